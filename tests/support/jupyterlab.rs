//! JupyterLab driven the way a person uses it, for `tests/jupyterlab.rs`:
//! a real JupyterLab 4 server on loopback with the evcxr kernel ([`Lab`]),
//! headless Chromium through playwright-core (`tests/jupyterlab/driver.mjs`,
//! [`Browser`]), and the two together with an open notebook ([`Session`]):
//! cells run, input typed, themes switched, outputs screenshot, measured,
//! or read by zbar, and maps drawn in a cell measured in the page.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::map_site::Sample;

/// The first `:dep` compiles everything on a cold cache (minutes).
pub const DEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Any other cell: compiling it takes a second or two.
pub const CELL_TIMEOUT: Duration = Duration::from_secs(180);
/// Starting JupyterLab, or the browser; each step of the driver.
pub const START_TIMEOUT: Duration = Duration::from_secs(180);
pub const LIGHT: &str = "JupyterLab Light";
pub const DARK: &str = "JupyterLab Dark";

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where screenshots are kept after the test (`target/tmp/jupyterlab/`).
pub fn shots_dir() -> PathBuf {
    // Set for integration tests only (the examples share this support).
    let tmp = option_env!("CARGO_TARGET_TMPDIR").unwrap_or("target/tmp");
    let dir = Path::new(tmp).join("jupyterlab");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Sends SIGTERM, then SIGKILL after `grace`, to the process group `pgid`.
pub fn stop_group(child: &mut Child, grace: Duration) {
    let pgid = child.id().to_string();
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{pgid}")])
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

// ---- the JupyterLab server ----

/// A JupyterLab server on 127.0.0.1, on a port it chose itself, with its own
/// token and Jupyter directories (an evcxr kernel spec, the theme) in a
/// temporary directory, serving `root`. Its kernels inherit its environment.
pub struct Lab {
    server: Child,
    port: u16,
    token: String,
    dir: tempfile::TempDir,
}

impl Lab {
    pub fn start(home: &Path, root: &Path, env: &[(String, String)]) -> Lab {
        let dir = tempfile::Builder::new()
            .prefix("carto-jlab-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        let runtime = dir.path().join("runtime");
        let settings = dir.path().join("settings");
        let spec = data.join("kernels").join("rust");
        for d in [&spec, &runtime, &settings, &dir.path().join("config")] {
            std::fs::create_dir_all(d).unwrap();
        }
        // The notebooks' kernel spec is "rust": this exact evcxr_jupyter.
        std::fs::write(
            spec.join("kernel.json"),
            json!({
                "argv": [super::tools::evcxr(), "--control_file", "{connection_file}"],
                "display_name": "Rust",
                "language": "rust",
            })
            .to_string(),
        )
        .unwrap();
        // User settings: the light theme to start with, every cell in the
        // page (no windowing: the driver finds cells by index), no news.
        for (file, value) in [
            (
                "@jupyterlab/apputils-extension/themes.jupyterlab-settings",
                json!({ "theme": LIGHT }),
            ),
            (
                "@jupyterlab/notebook-extension/tracker.jupyterlab-settings",
                json!({ "windowingMode": "none" }),
            ),
            (
                "@jupyterlab/apputils-extension/notification.jupyterlab-settings",
                json!({ "fetchNews": "false", "checkForUpdates": false }),
            ),
        ] {
            let path = settings.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, value.to_string()).unwrap();
        }
        let token = super::random_word();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut cmd = Command::new(super::tools::jupyter_lab());
        super::evcxr::kernel_env(&mut cmd, home, env);
        cmd.args([
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            // Port 0: the server binds a free port itself (no race with
            // another process between choosing and binding).
            "--port=0",
            "--ServerApp.port_retries=0",
        ])
        .arg(format!("--IdentityProvider.token={token}"))
        .arg(format!("--ServerApp.root_dir={}", root.display()))
        .env("JUPYTER_CONFIG_DIR", dir.path().join("config"))
        .env("JUPYTER_DATA_DIR", &data)
        .env("JUPYTER_RUNTIME_DIR", &runtime)
        .env("JUPYTERLAB_SETTINGS_DIR", &settings)
        .env("JUPYTERLAB_WORKSPACES_DIR", dir.path().join("workspaces"))
        .env("JUPYTER_PATH", &data)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        // Its own process group, stopped as a whole at the end.
        .process_group(0);
        let server = cmd.spawn().expect("start jupyter-lab");
        let mut lab = Lab {
            port: 0,
            token,
            server,
            dir,
        };
        // The server writes its port into its runtime file once it listens.
        let info = runtime.join(format!("jpserver-{}.json", lab.server.id()));
        let deadline = Instant::now() + START_TIMEOUT;
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&info)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| v["port"].as_u64())
            {
                break port;
            }
            if let Ok(Some(status)) = lab.server.try_wait() {
                panic!("jupyter-lab exited ({status}):\n{}", lab.log());
            }
            assert!(
                Instant::now() < deadline,
                "jupyter-lab did not start within {START_TIMEOUT:?}:\n{}",
                lab.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        lab.port = u16::try_from(port).unwrap();
        lab
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// The page of a notebook, with a fresh workspace.
    pub fn notebook_page(&self, file: &str) -> String {
        self.url(&format!("lab/tree/{file}?reset&token={}", self.token))
    }

    /// A file as the contents API gives it (with the server's view of
    /// trust: `metadata.trusted` on each code cell).
    pub fn contents(&self, file: &str) -> Value {
        let (status, _, body) = super::http_get(&self.url(&format!(
            "api/contents/{file}?content=1&token={}",
            self.token
        )));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Lab {
    /// SIGTERM makes the server shut its kernels down (each in a process
    /// group of its own); then its group is killed.
    fn drop(&mut self) {
        stop_group(&mut self.server, Duration::from_secs(20));
    }
}

// ---- the browser, through the driver ----

pub struct Browser {
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<Value>,
}

impl Browser {
    pub fn start() -> Browser {
        let mut child = Command::new(super::tools::node())
            .arg(
                manifest_dir()
                    .join("tests")
                    .join("jupyterlab")
                    .join("driver.mjs"),
            )
            .args(["--deadline", &(DEP_TIMEOUT * 2).as_secs().to_string()])
            .env("CARTO_AUTH_NODE_MODULES", super::tools::node_modules())
            .env("CARTO_AUTH_CHROMIUM", super::tools::chromium())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .expect("start node");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"event": "noise", "text": line}));
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        Browser {
            child,
            stdin,
            events,
        }
    }

    /// Sends one command and returns its answer; a failure of the driver
    /// fails the test with its message (and the server's log).
    pub fn send(&mut self, lab: &Lab, command: Value, timeout: Duration) -> Value {
        let stdin = self.stdin.as_mut().expect("the driver's stdin");
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .expect("the driver is gone");
        let deadline = Instant::now() + timeout + Duration::from_secs(30);
        loop {
            match self
                .events
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(event) if event["event"] == "ok" => return event,
                Ok(event) if event["event"] == "noise" => eprintln!("driver: {}", event["text"]),
                Ok(event) => panic!(
                    "the driver failed at {command}: {event}\n--- JupyterLab's log ---\n{}",
                    lab.log()
                ),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no answer to {command} within {timeout:?}\n{}", lab.log())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the driver exited at {command}\n{}", lab.log())
                }
            }
        }
    }
}

impl Drop for Browser {
    /// Closing stdin makes the driver close Chromium and exit.
    fn drop(&mut self) {
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        stop_group(&mut self.child, Duration::from_secs(1));
    }
}

/// A person at JupyterLab: the server, the browser, the open notebook's
/// cells (markdown or code, and their sources, to find each code cell by a
/// piece of its code).
pub struct Session {
    pub lab: Lab,
    pub browser: Browser,
    pub cells: Vec<(bool, String)>,
}

impl Session {
    pub fn send(&mut self, command: Value, timeout: Duration) -> Value {
        self.browser.send(&self.lab, command, timeout)
    }

    /// The index of the one code cell that contains `piece`.
    pub fn cell(&self, piece: &str) -> usize {
        let found: Vec<usize> = (0..self.cells.len())
            .filter(|&i| self.cells[i].0 && self.cells[i].1.contains(piece))
            .collect();
        assert_eq!(found.len(), 1, "cells with {piece:?}: {:#?}", self.cells);
        found[0]
    }

    pub fn run(&mut self, cell: usize) {
        self.send(json!({"op": "run", "cell": cell}), START_TIMEOUT);
    }

    /// Types `source` into a code cell at the end of the notebook, as a
    /// person does: the empty cell that running the last one added, else
    /// a new one (the `b` key); returns its index.
    pub fn append(&mut self, source: &str) -> usize {
        let answer = self.send(json!({"op": "append", "source": source}), START_TIMEOUT);
        let cell = usize::try_from(answer["cell"].as_u64().expect("the new cell")).unwrap();
        self.cells.resize(cell, (true, String::new()));
        self.cells.push((true, source.to_string()));
        cell
    }

    /// Waits for the cell to be done, to show an input box (`"stdin"`) or
    /// to show `text`, and returns what it shows.
    pub fn wait(&mut self, cell: usize, until: &str, text: &str, timeout: Duration) -> Value {
        let command = json!({"op": "wait", "cell": cell, "until": until, "text": text,
            "timeout": timeout.as_secs()});
        self.send(command, timeout)["output"].clone()
    }

    /// Runs a cell to its end; its output must show no error.
    pub fn run_to_end(&mut self, cell: usize, timeout: Duration) -> Value {
        self.run(cell);
        let output = self.wait(cell, "done", "", timeout);
        let text = output["text"].as_str().unwrap_or_default();
        assert!(
            !text.to_ascii_lowercase().contains("error"),
            "cell {cell} failed:\n{}\n---\n{text}",
            self.cells[cell].1
        );
        output
    }

    pub fn theme(&mut self, name: &str) {
        let answer = self.send(json!({"op": "theme", "name": name}), START_TIMEOUT);
        assert_eq!(
            answer["light"],
            if name == DARK { "false" } else { "true" },
            "{answer}"
        );
    }

    /// A screenshot of a cell's output (`"stdout"` or `"html"`), kept in
    /// the target directory, and what zbar decodes in it.
    pub fn scan(&mut self, cell: usize, output: &str, name: &str) -> Option<String> {
        let path = shots_dir().join(format!("{name}.png"));
        let _ = std::fs::remove_file(&path);
        self.send(
            json!({"op": "screenshot", "cell": cell, "output": output, "path": path}),
            START_TIMEOUT,
        );
        eprintln!("screenshot: {}", path.display());
        zbar(&path)
    }

    /// The map a cell shows, once it reported (drawn or failed), with the
    /// colour at each of `samples` in a screenshot of JupyterLab's page
    /// (kept as `{name}.png`): findings for
    /// [`assert_colors`](super::map_site::assert_colors).
    pub fn map(&mut self, cell: usize, samples: &[Sample], name: &str) -> Value {
        let path = shots_dir().join(format!("{name}.png"));
        let _ = std::fs::remove_file(&path);
        let samples: Vec<Value> = samples
            .iter()
            .map(|s| json!({"name": s.name, "lon": s.lon, "lat": s.lat}))
            .collect();
        let answer = self.send(
            json!({"op": "map", "cell": cell, "samples": samples, "path": path}),
            START_TIMEOUT,
        );
        eprintln!("screenshot: {}", path.display());
        answer["map"].clone()
    }

    /// The cards a cell shows, as measured in the page.
    pub fn cards(&mut self, cell: usize) -> Vec<Value> {
        let answer = self.send(json!({"op": "inspect", "cell": cell}), START_TIMEOUT);
        answer["cards"].as_array().cloned().unwrap_or_default()
    }
}

/// What zbar reads in a picture: the text of its one QR code, or `None`.
pub fn zbar(picture: &Path) -> Option<String> {
    let mut child = Command::new(super::tools::zbarimg())
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(picture)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start zbarimg");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "zbarimg did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = reader.join().unwrap();
    // zbarimg exits with 4 when it found no code.
    (status.success() && !text.trim().is_empty()).then(|| text.trim_end_matches('\n').to_string())
}
