//! `notebooks/remote_kernel.ipynb` in JupyterLab itself: a real JupyterLab 4
//! server on loopback with the evcxr kernel, driven by headless Chromium
//! through playwright-core (`tests/jupyterlab/driver.mjs`) the way a person
//! uses it, against the fake CARTO. Cell by cell: the one-line login
//! answered through JupyterLab's input box, with its streamed QR code read
//! by zbar from a screenshot in the light and the dark theme (what a phone
//! sees); the device code; the login card and the session cards, readable
//! in both themes; the notebook saved, then reopened untrusted, where the
//! card's QR code must still be there and still scan.
//!
//! Nothing is skipped: without JupyterLab, playwright-core, Chromium, zbar or
//! evcxr this fails (`scripts/test` installs them). Screenshots are kept in
//! the target directory (`target/tmp/jupyterlab/`; their paths are printed).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::FakeCarto;

/// The first `:dep` compiles everything on a cold cache (minutes).
const DEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Any other cell: compiling it takes a second or two.
const CELL_TIMEOUT: Duration = Duration::from_secs(180);
/// Starting JupyterLab, or the browser; each step of the driver.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// The notebook, as shipped; its `:dep` line points at this checkout.
const NOTEBOOK: &str = "remote_kernel";
const LIGHT: &str = "JupyterLab Light";
const DARK: &str = "JupyterLab Dark";
/// WCAG AA for body text.
const MIN_CONTRAST: f64 = 4.5;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where screenshots are kept after the test.
fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("jupyterlab");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Sends SIGTERM, then SIGKILL after `grace`, to the process group `pgid`.
fn stop_group(child: &mut Child, grace: Duration) {
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
struct Lab {
    server: Child,
    port: u16,
    token: String,
    dir: tempfile::TempDir,
}

impl Lab {
    fn start(home: &Path, root: &Path, env: &[(String, String)]) -> Lab {
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
                "argv": [support::tools::evcxr(), "--control_file", "{connection_file}"],
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
        let token = support::random_word();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut cmd = Command::new(support::tools::jupyter_lab());
        support::evcxr::kernel_env(&mut cmd, home, env);
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

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// The page of a notebook, with a fresh workspace.
    fn notebook_page(&self, file: &str) -> String {
        self.url(&format!("lab/tree/{file}?reset&token={}", self.token))
    }

    /// A file as the contents API gives it (with the server's view of
    /// trust: `metadata.trusted` on each code cell).
    fn contents(&self, file: &str) -> Value {
        let (status, _, body) = support::http_get(&self.url(&format!(
            "api/contents/{file}?content=1&token={}",
            self.token
        )));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    fn log(&self) -> String {
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

struct Browser {
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<Value>,
}

impl Browser {
    fn start() -> Browser {
        let mut child = Command::new(support::tools::node())
            .arg(
                manifest_dir()
                    .join("tests")
                    .join("jupyterlab")
                    .join("driver.mjs"),
            )
            .args(["--deadline", &(DEP_TIMEOUT * 2).as_secs().to_string()])
            .env("CARTO_AUTH_NODE_MODULES", support::tools::node_modules())
            .env("CARTO_AUTH_CHROMIUM", support::tools::chromium())
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
    fn send(&mut self, lab: &Lab, command: Value, timeout: Duration) -> Value {
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
struct Session {
    lab: Lab,
    browser: Browser,
    cells: Vec<(bool, String)>,
}

impl Session {
    fn send(&mut self, command: Value, timeout: Duration) -> Value {
        self.browser.send(&self.lab, command, timeout)
    }

    /// The index of the one code cell that contains `piece`.
    fn cell(&self, piece: &str) -> usize {
        let found: Vec<usize> = (0..self.cells.len())
            .filter(|&i| self.cells[i].0 && self.cells[i].1.contains(piece))
            .collect();
        assert_eq!(found.len(), 1, "cells with {piece:?}: {:#?}", self.cells);
        found[0]
    }

    fn run(&mut self, cell: usize) {
        self.send(json!({"op": "run", "cell": cell}), START_TIMEOUT);
    }

    /// Waits for the cell to be done, to show an input box (`"stdin"`) or
    /// to show `text`, and returns what it shows.
    fn wait(&mut self, cell: usize, until: &str, text: &str, timeout: Duration) -> Value {
        let command = json!({"op": "wait", "cell": cell, "until": until, "text": text,
            "timeout": timeout.as_secs()});
        self.send(command, timeout)["output"].clone()
    }

    /// Runs a cell to its end; its output must show no error.
    fn run_to_end(&mut self, cell: usize, timeout: Duration) -> Value {
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

    fn theme(&mut self, name: &str) {
        let answer = self.send(json!({"op": "theme", "name": name}), START_TIMEOUT);
        assert_eq!(
            answer["light"],
            if name == DARK { "false" } else { "true" },
            "{answer}"
        );
    }

    /// A screenshot of a cell's output (`"stdout"` or `"html"`), kept in
    /// the target directory, and what zbar decodes in it.
    fn scan(&mut self, cell: usize, output: &str, name: &str) -> Option<String> {
        let path = shots_dir().join(format!("{name}.png"));
        let _ = std::fs::remove_file(&path);
        self.send(
            json!({"op": "screenshot", "cell": cell, "output": output, "path": path}),
            START_TIMEOUT,
        );
        eprintln!("screenshot: {}", path.display());
        zbar(&path)
    }

    /// The cards a cell shows, as measured in the page.
    fn cards(&mut self, cell: usize) -> Vec<Value> {
        let answer = self.send(json!({"op": "inspect", "cell": cell}), START_TIMEOUT);
        answer["cards"].as_array().cloned().unwrap_or_default()
    }
}

/// What zbar reads in a picture: the text of its one QR code, or `None`.
fn zbar(picture: &Path) -> Option<String> {
    let mut child = Command::new(support::tools::zbarimg())
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

/// A card as a person sees it: every text on it readable (WCAG AA
/// contrast against what is behind it).
fn assert_readable(card: &Value, theme: &str) {
    let texts = card["texts"].as_array().expect("texts");
    assert!(!texts.is_empty(), "{theme}: no text on {card}");
    for t in texts {
        let contrast = t["contrast"].as_f64().unwrap_or_default();
        assert!(
            contrast >= MIN_CONTRAST,
            "{theme}: {:?} has a contrast of {contrast:.2} ({} on {})",
            t["text"],
            t["color"],
            t["background"]
        );
    }
}

/// The one card with `label` among those of a cell.
fn card<'a>(cards: &'a [Value], label: &str) -> &'a Value {
    let found: Vec<&Value> = cards.iter().filter(|c| c["label"] == label).collect();
    assert_eq!(found.len(), 1, "{label}: {cards:#?}");
    found[0]
}

/// The login card: its button, its QR code image, readable; `href` is
/// where the button goes.
fn assert_login_card(cards: &[Value], href: &str, theme: &str) {
    let card = card(cards, "Sign in to CARTO");
    let button = &card["button"];
    assert_eq!(button["text"], "Sign in to CARTO", "{theme}: {card}");
    assert_eq!(button["href"], href, "{theme}");
    assert_eq!(
        button["hit"], true,
        "{theme}: the button is covered: {card}"
    );
    assert!(
        button["width"].as_f64().unwrap_or_default() >= 100.0
            && button["height"].as_f64().unwrap_or_default() >= 24.0,
        "{theme}: a small button: {card}"
    );
    let images = card["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{theme}: {card}");
    assert_eq!(images[0]["loaded"], true, "{theme}: {card}");
    assert!(
        images[0]["width"].as_f64().unwrap_or_default() >= 150.0,
        "{theme}: {card}"
    );
    let text = card["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("Or scan with a phone") && text.contains("(or scan the QR code)"),
        "{theme}: {text}"
    );
    assert_readable(card, theme);
}

/// The session card after a login.
fn assert_session_card(cards: &[Value], fake: &FakeCarto, theme: &str) {
    let card = card(cards, "CARTO session");
    let text = card["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("OAuth") && text.contains(&fake.api_base_url()),
        "{theme}: {text}"
    );
    // One of the tokens the fake issued (each login gets its own), masked.
    let tokens = fake.issued_tokens();
    assert!(
        tokens.iter().any(|t| text.contains(&support::masked(t))),
        "{theme}: {text}"
    );
    assert!(
        tokens.iter().all(|t| !text.contains(t.as_str())),
        "{theme}: a token itself is shown"
    );
    assert_readable(card, theme);
}

/// The line of the cell's text that is the authorize URL.
fn authorize_url(output: &Value, fake: &FakeCarto) -> String {
    let text = output["text"].as_str().unwrap_or_default();
    let prefix = format!("{}/authorize?", fake.base);
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no sign-in address in:\n{text}"))
        .to_string()
}

/// The shipped notebook, copied into `root` with its `:dep` line pointing
/// at this checkout (`path = ".."` is `notebooks/`' parent); its cells,
/// each with whether it is code.
fn copy_notebook(root: &Path) -> Vec<(bool, String)> {
    let source = manifest_dir()
        .join("notebooks")
        .join(format!("{NOTEBOOK}.ipynb"));
    let mut nb: Value = serde_json::from_str(&std::fs::read_to_string(&source).unwrap()).unwrap();
    let checkout = manifest_dir().canonicalize().unwrap();
    let mut code = Vec::new();
    for cell in nb["cells"].as_array_mut().unwrap() {
        let text = match &cell["source"] {
            Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect::<String>(),
            other => other.as_str().unwrap_or_default().to_string(),
        };
        let text = text.replace(
            "path = \"..\"",
            &format!("path = {}", json!(checkout.display().to_string())),
        );
        cell["source"] = json!(text);
        if cell["cell_type"] == "code" {
            code.push(text);
        }
    }
    // The driver counts cells of every kind: so does this list.
    let all = nb["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let source = c["source"].as_str().unwrap_or_default().to_string();
            (c["cell_type"] == "code", source)
        })
        .collect();
    assert!(
        code.first()
            .is_some_and(|c| c.starts_with(":dep carto-auth = { path = \"/")),
        "{code:?}"
    );
    std::fs::write(
        root.join(format!("{NOTEBOOK}.ipynb")),
        serde_json::to_string_pretty(&nb).unwrap(),
    )
    .unwrap();
    all
}

#[test]
fn the_remote_kernel_notebook_in_jupyterlab_light_and_dark_saved_and_reopened_untrusted() {
    let fake = FakeCarto::start();
    let home = tempfile::Builder::new()
        .prefix("carto-jlab-home-")
        .tempdir()
        .unwrap();
    let root = home.path().join("work");
    std::fs::create_dir_all(&root).unwrap();
    let cells = copy_notebook(&root);
    let (browser_script, opened) = support::recording_browser(home.path());
    let mut env = fake.env();
    env.push(("BROWSER".into(), browser_script.display().to_string()));
    // What JupyterHub sets: no browser can come back to this kernel.
    env.push(("JUPYTERHUB_USER".into(), "ana".into()));
    let _lock = support::evcxr::lock_build_cache();
    let lab = Lab::start(home.path(), &root, &env);
    let browser = Browser::start();
    let mut s = Session {
        lab,
        browser,
        cells,
    };
    let page = s.lab.notebook_page(&format!("{NOTEBOOK}.ipynb"));
    let opened_page = s.send(
        json!({"op": "open", "url": page, "cells": s.cells.len()}),
        START_TIMEOUT,
    );
    assert_eq!(
        opened_page["cells"].as_u64(),
        Some(s.cells.len() as u64),
        "{opened_page}"
    );
    assert_eq!(opened_page["theme"], LIGHT);

    let started = Instant::now();
    s.run_to_end(s.cell(":dep carto-auth"), DEP_TIMEOUT);
    eprintln!(
        "jupyterlab: the :dep cell took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    s.run_to_end(s.cell("use carto_auth::"), CELL_TIMEOUT);

    // The one-line login: the sign-in address, a QR code and an input box
    // while the cell waits. A phone reads the code from the screen, in the
    // light theme and in the dark one.
    let one_liner = s.cell(".open_browser(false).login()?");
    s.run(one_liner);
    let waiting = s.wait(one_liner, "stdin", "", CELL_TIMEOUT);
    let url = authorize_url(&waiting, &fake);
    for (theme, name) in [(LIGHT, "light"), (DARK, "dark")] {
        s.theme(theme);
        assert_eq!(
            s.scan(one_liner, "stdout", &format!("streamed-qr-{name}"))
                .as_deref(),
            Some(url.as_str()),
            "{theme}: zbar cannot read the streamed QR code"
        );
    }
    s.theme(LIGHT);
    let landed = fake.authorize(&url);
    s.send(
        json!({"op": "input", "cell": one_liner, "value": landed}),
        START_TIMEOUT,
    );
    let done = s.wait(one_liner, "done", "", CELL_TIMEOUT);
    let text = done["text"].as_str().unwrap_or_default();
    assert!(
        !text.contains(&landed) && !text.to_ascii_lowercase().contains("error"),
        "the pasted address is not echoed, and the login worked:\n{text}"
    );
    assert_session_card(&s.cards(one_liner), &fake, LIGHT);
    assert!(!opened.exists(), "no browser is opened on a remote kernel");

    // The device code: shown in the cell, approved elsewhere; the cell
    // finishes by itself. A fresh user: no cache.
    std::fs::remove_file(home.path().join(".carto-auth").join("token_oauth.json")).unwrap();
    let device = s.cell(".device_flow(true).login()?");
    s.run(device);
    let shown = s.wait(
        device,
        "text",
        &format!("{}/activate?user_code=", fake.base),
        CELL_TIMEOUT,
    );
    let text = shown["text"].as_str().unwrap_or_default();
    let line = text
        .lines()
        .find(|l| l.contains("/activate?user_code="))
        .unwrap();
    let code = support::query_param(line.trim(), "user_code").unwrap();
    fake.approve_device(&code);
    s.wait(device, "done", "", CELL_TIMEOUT);
    assert_session_card(&s.cards(device), &fake, LIGHT);

    // Two steps: the login card, in both themes, with a QR code that scans.
    let begin = s.cell(".begin()?");
    s.run_to_end(begin, CELL_TIMEOUT);
    let cards = s.cards(begin);
    let href = card(&cards, "Sign in to CARTO")["button"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        href.starts_with(&format!("{}/authorize?", fake.base)),
        "{href}"
    );
    assert_ne!(href, url, "each login has its own address");
    for (theme, name) in [(LIGHT, "light"), (DARK, "dark")] {
        s.theme(theme);
        assert_login_card(&s.cards(begin), &href, theme);
        assert_eq!(
            s.scan(begin, "html", &format!("card-qr-{name}")).as_deref(),
            Some(href.as_str()),
            "{theme}: zbar cannot read the card's QR code"
        );
        assert_session_card(&s.cards(one_liner), &fake, theme);
    }
    s.theme(LIGHT);

    // The placeholder filled in, as the notebook says.
    let complete = s.cell("login.complete(\"paste the address or code here\")?");
    let landed = fake.authorize(&href);
    let filled = s.cells[complete]
        .1
        .replace("paste the address or code here", &landed);
    s.send(
        json!({"op": "edit", "cell": complete, "source": filled}),
        START_TIMEOUT,
    );
    s.run_to_end(complete, CELL_TIMEOUT);
    assert_session_card(&s.cards(complete), &fake, LIGHT);
    let token = s.run_to_end(s.cell("get_access_token()?"), CELL_TIMEOUT);
    assert!(
        token["text"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("API {}", fake.api_base_url())),
        "{token}"
    );

    // Saved: outputs and all, no token in the file.
    s.send(json!({"op": "save"}), START_TIMEOUT);
    let saved = std::fs::read_to_string(root.join(format!("{NOTEBOOK}.ipynb"))).unwrap();
    assert!(saved.contains("Sign in to CARTO") && saved.contains("CARTO session"));
    for token in fake.issued_tokens() {
        assert!(!saved.contains(&token), "a token in the saved notebook");
    }

    // Reopened as a notebook that comes from somewhere else (a colleague, a
    // repository): JupyterLab signed what it saved, and trusts only what it
    // signed; a copy edited elsewhere (here: a note in its metadata) is
    // untrusted, so JupyterLab sanitizes its HTML outputs. The card still
    // shows its QR code, and it still scans.
    let copy = "reopened.ipynb";
    let mut elsewhere: Value = serde_json::from_str(&saved).unwrap();
    elsewhere["metadata"]["note"] = json!("edited on another machine");
    std::fs::write(root.join(copy), elsewhere.to_string()).unwrap();
    let reopened = s.lab.contents(copy);
    let trusted: Vec<&Value> = reopened["content"]["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["cell_type"] == "code")
        .map(|c| &c["metadata"]["trusted"])
        .collect();
    assert!(
        trusted.iter().any(|t| **t == json!(false)),
        "the copy must be untrusted: {trusted:?}"
    );
    let copy_page = s.lab.notebook_page(copy);
    s.send(
        json!({"op": "open", "url": copy_page, "cells": s.cells.len()}),
        START_TIMEOUT,
    );
    for (theme, name) in [(LIGHT, "light"), (DARK, "dark")] {
        s.theme(theme);
        let cards = s.cards(begin);
        let login = card(&cards, "Sign in to CARTO");
        assert_eq!(login["svgs"], 0, "{login}");
        assert_login_card(&cards, &href, theme);
        assert_eq!(
            s.scan(begin, "html", &format!("reopened-card-qr-{name}"))
                .as_deref(),
            Some(href.as_str()),
            "{theme}: the reopened card's QR code does not scan"
        );
        assert_session_card(&s.cards(one_liner), &fake, theme);
    }
}
