//! Child processes: this test binary run again as a child with its own
//! environment, stdin and `$BROWSER`, and its output read as it comes.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use super::FakeCarto;

/// A `$BROWSER` that writes the URL it is given to a file and returns.
pub fn recording_browser(dir: &Path) -> (PathBuf, PathBuf) {
    let script = dir.join("browser.sh");
    let record = dir.join("opened-url");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s' \"$1\" > '{}.tmp' && mv '{0}.tmp' '{0}'\n",
            record.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (script, record)
}

/// Waits (bounded) until `done` holds, looking every 20 ms.
pub fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "waited {timeout:?} for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) for a file to appear and returns its content.
pub fn wait_for_file(path: &Path, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not appear within {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// In a `#[test]` function that runs itself again as a child process:
/// in the child, returns from the function with `$child_main()`; in the
/// test, gives the [`ChildTest`] that spawns such children. The child's
/// test name is the function's own, so a renamed test cannot leave its
/// child running nothing.
///
/// ```ignore
/// #[test]
/// fn a_login_in_a_child() {
///     let test = support::child_test!(child_login);
///     let mut child = test.session("login", home.path(), &env);
/// }
/// ```
#[allow(unused_macros)] // Not every test file has children.
macro_rules! child_test {
    ($child_main:expr) => {{
        fn here() {}
        match $crate::support::ChildTest::of(::std::any::type_name_of_val(&here)) {
            Some(test) => test,
            None => return $child_main(),
        }
    }};
}
pub(crate) use child_test;

/// A test that runs this test binary again as a child (see
/// [`child_test!`]): the child runs the same test alone, with a clean
/// environment (PATH, HOME and the variables given) and the scenario in
/// `CARTO_TEST_CHILD`.
#[derive(Debug, Clone)]
pub struct ChildTest {
    /// libtest's name of the test.
    name: String,
    /// The test binary the child runs.
    exe: PathBuf,
}

impl ChildTest {
    /// `None` in a child; in the test, the test that `function` (the type
    /// name of a function item declared in its body) lies in, checked to be
    /// one this binary runs.
    pub fn of(function: &str) -> Option<ChildTest> {
        if child_scenario().is_some() {
            return None;
        }
        let name = test_name(function);
        let exe = std::env::current_exe().unwrap();
        let listed = Command::new(&exe)
            .args(["--list", "--exact", &name])
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert!(
            listed.lines().any(|l| l == format!("{name}: test")),
            "this test binary has no test {name:?} (from {function}): a child would run \
             nothing. Use child_test! in the body of the #[test] function itself"
        );
        Some(ChildTest { name, exe })
    }

    /// libtest's name of the test.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same test, its children running a copy of this test binary in
    /// `dir` that every user may run, for a child of another user who may
    /// not be able to enter the directory the build lives in.
    #[cfg(unix)]
    pub fn copied_to(&self, dir: &Path) -> ChildTest {
        use std::os::unix::fs::PermissionsExt;
        let exe = dir.join(self.exe.file_name().unwrap());
        std::fs::copy(&self.exe, &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        ChildTest {
            name: self.name.clone(),
            exe,
        }
    }

    /// Starts a child that runs `scenario` with HOME=`home` and `env`.
    pub fn spawn(&self, scenario: &str, home: &Path, env: &[(String, String)]) -> Child {
        self.command(Command::new(&self.exe), scenario, home, env)
            .spawn()
            .unwrap()
    }

    /// [`spawn`](Self::spawn), its output read as it comes.
    pub fn session(&self, scenario: &str, home: &Path, env: &[(String, String)]) -> ChildSession {
        ChildSession::new(self.spawn(scenario, home, env))
    }

    /// [`spawn`](Self::spawn) under `sh -c 'umask <umask> && exec <child>'`.
    pub fn spawn_with_umask(
        &self,
        umask: &str,
        scenario: &str,
        home: &Path,
        env: &[(String, String)],
    ) -> Child {
        self.spawn_in_sh(&[], &format!("umask {umask}"), scenario, home, env)
    }

    /// [`spawn`](Self::spawn) as `<launcher...> sh -c '<setup> && exec
    /// <child>'`, e.g. `unshare -m` with a `mount` as setup. The
    /// environment is the child's.
    pub fn spawn_in_sh(
        &self,
        launcher: &[&str],
        setup: &str,
        scenario: &str,
        home: &Path,
        env: &[(String, String)],
    ) -> Child {
        let mut cmd = match launcher.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg("/bin/sh");
                c
            }
            None => Command::new("/bin/sh"),
        };
        cmd.arg("-c")
            .arg(format!("{setup} && exec \"$0\" \"$@\""))
            .arg(&self.exe);
        self.command(cmd, scenario, home, env).spawn().unwrap()
    }

    fn command(
        &self,
        mut cmd: Command,
        scenario: &str,
        home: &Path,
        env: &[(String, String)],
    ) -> Command {
        cmd.args([&self.name, "--exact", "--nocapture", "--test-threads=1"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("CARTO_TEST_CHILD", scenario)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }
}

impl ChildTest {
    /// Starts a child that runs `scenario` with the local flow against
    /// `fake`: a HOME of its own (a temporary directory, which also holds
    /// its `$BROWSER` and temporary files), the recording browser, and the
    /// `extra` variables. Gives the HOME, the child, and the file the
    /// browser writes the address it was sent to ([`wait_for_file`]).
    pub fn local_flow(
        &self,
        fake: &FakeCarto,
        scenario: &str,
        extra: &[(String, String)],
    ) -> (tempfile::TempDir, ChildSession, PathBuf) {
        let home = tempfile::tempdir().unwrap();
        let (browser, opened) = recording_browser(home.path());
        let mut env = local_flow_env(fake, home.path(), &browser);
        env.extend_from_slice(extra);
        let child = self.session(scenario, home.path(), &env);
        (home, child, opened)
    }
}

/// libtest's name of the test whose body declares the function item named
/// `function` by `type_name`: `<crate>::<modules>::<test>[::{{closure}}]::<item>`
/// without the crate, the closures and the item.
fn test_name(function: &str) -> String {
    let path: Vec<&str> = function
        .split("::")
        .filter(|part| *part != "{{closure}}")
        .collect();
    path[1..path.len() - 1].join("::")
}

/// The system's temporary directory when every user can enter it (and
/// each directory above it), else `/tmp`: for files a child of another
/// user must reach.
#[cfg(unix)]
pub fn enterable_by_all_tmp() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let tmp = std::env::temp_dir();
    let enterable = tmp
        .ancestors()
        .all(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    if enterable {
        tmp
    } else {
        PathBuf::from("/tmp")
    }
}

/// Waits for a child (bounded) and returns (success, stdout, stderr).
pub fn finish_child(mut child: Child, timeout: Duration) -> (bool, String, String) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            let mut err = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.success(), out, err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process whose stdout and stderr lines are read as they come.
pub struct ChildSession {
    pub child: Child,
    pub stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<(bool, String)>,
    pub seen: Vec<(bool, String)>,
}

impl ChildSession {
    pub fn new(mut child: Child) -> ChildSession {
        let (tx, rx) = std::sync::mpsc::channel();
        let stdin = child.stdin.take();
        for (is_err, stream) in [
            (
                false,
                Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            ),
            (true, Box::new(child.stderr.take().unwrap())),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    let _ = tx.send((is_err, line));
                }
            });
        }
        ChildSession {
            child,
            stdin,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// The first line (stdout or stderr) matching `pred`, waiting at most `timeout`.
    pub fn wait_line(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        if let Some((_, l)) = self.seen.iter().find(|(_, l)| pred(l)) {
            return l.clone();
        }
        self.wait_new_line(timeout, pred)
    }

    /// The first line matching `pred` among those not seen yet.
    pub fn wait_new_line(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line.1) {
                        return line.1;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let why = if self.seen.iter().any(|(_, l)| l == "running 0 tests") {
                        "the child ran no test"
                    } else {
                        "the child closed its output"
                    };
                    panic!("{why} without a matching line; saw:\n{:#?}", self.seen);
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "no new matching line within {timeout:?}; saw:\n{:#?}",
                        self.seen
                    );
                }
            }
        }
    }

    /// Whether a line matching `pred` has come, among those seen and those
    /// waiting to be read; does not wait.
    pub fn has_line(&mut self, pred: impl Fn(&str) -> bool) -> bool {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen.iter().any(|(_, l)| pred(l))
    }

    /// Waits (bounded) until the child has exited and closed its output,
    /// every line kept in `seen`; whether it exited successfully.
    pub fn finish(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "child did not finish within {timeout:?}; saw:\n{:#?}",
                        self.seen
                    );
                }
            }
        }
        self.child.wait().unwrap().success()
    }

    pub fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the RESULT line and the exit; returns the result and all
    /// stderr text.
    pub fn result(&mut self, timeout: Duration) -> (String, String) {
        let line = self.wait_line(timeout, |l| l.starts_with("RESULT "));
        let deadline = Instant::now() + timeout;
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "child did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        // All of its output, to the end (a warning on stderr can be read
        // after the RESULT on stdout): the readers stop at the pipes' end.
        // The deadline only guards against a grandchild holding them open.
        while let Ok(l) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(l);
        }
        let stderr = self
            .seen
            .iter()
            .filter(|(e, _)| *e)
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        (line.trim_start_matches("RESULT ").to_string(), stderr)
    }
}

/// In a child: the crate's log records on stderr, one line each (`LOG
/// <level> <message>`), for the parent to wait on what the child is doing.
pub fn log_to_stderr() {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, _: &log::Metadata) -> bool {
            true
        }
        fn log(&self, record: &log::Record) {
            eprintln!("LOG {} {}", record.level(), record.args());
        }
        fn flush(&self) {}
    }
    if log::set_logger(&Stderr).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}

/// The scenario this process runs as a child, if it is one.
pub fn child_scenario() -> Option<String> {
    std::env::var("CARTO_TEST_CHILD").ok()
}

/// The environment of a child that runs the local flow: the fake's
/// endpoints, a `$BROWSER`, the local flow forced on, temporary files in `dir`.
pub fn local_flow_env(fake: &FakeCarto, dir: &Path, browser: &Path) -> Vec<(String, String)> {
    let mut env = fake.env();
    env.push(("BROWSER".into(), browser.display().to_string()));
    env.push(("CARTO_AUTH_OPEN_BROWSER".into(), "1".into()));
    env.push(("TMPDIR".into(), dir.display().to_string()));
    env
}

/// The environment of a child that runs the paste flow: the fake's
/// endpoints, no local browser.
pub fn paste_flow_env(fake: &FakeCarto) -> Vec<(String, String)> {
    let mut env = fake.env();
    env.push(("CARTO_AUTH_OPEN_BROWSER".into(), "0".into()));
    env
}

/// A query parameter of a URL, decoded.
pub fn query_param(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// A JSON file (a cache file, say), parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
