//! Child processes: this test binary run again as a child with its own
//! environment, stdin and `$BROWSER`, and its output read as it comes.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// Runs this test binary again as a child that executes `scenario` (see
/// `child_main` in the calling test file), with a clean environment: only
/// PATH, HOME=`home` and the variables given.
pub fn spawn_child(
    test_name: &str,
    scenario: &str,
    home: &Path,
    env: &[(String, String)],
) -> Child {
    child_command(
        Command::new(std::env::current_exe().unwrap()),
        test_name,
        scenario,
        home,
        env,
    )
    .spawn()
    .unwrap()
}

/// [`spawn_child`] under `sh -c 'umask <umask> && exec <child>'`.
pub fn spawn_child_with_umask(
    umask: &str,
    test_name: &str,
    scenario: &str,
    home: &Path,
    env: &[(String, String)],
) -> Child {
    spawn_child_in_sh(
        &[],
        &format!("umask {umask}"),
        test_name,
        scenario,
        home,
        env,
    )
}

/// [`spawn_child`] as `<launcher...> sh -c '<setup> && exec <child>'`, e.g.
/// `unshare -m` with a `mount` as setup. The environment is the child's.
pub fn spawn_child_in_sh(
    launcher: &[&str],
    setup: &str,
    test_name: &str,
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
        .arg(std::env::current_exe().unwrap());
    child_command(cmd, test_name, scenario, home, env)
        .spawn()
        .unwrap()
}

fn child_command(
    mut cmd: Command,
    test_name: &str,
    scenario: &str,
    home: &Path,
    env: &[(String, String)],
) -> Command {
    cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
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
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no new matching line within {timeout:?}; saw:\n{:#?}",
                        self.seen
                    );
                }
            }
        }
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
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
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
