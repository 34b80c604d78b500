//! Headless Chromium kept open on a page until the test has what it
//! waits for (the page reports by itself), then ended. WebGL through
//! SwiftShader: no GPU needed.

use std::process::{Child, Command, Stdio};

pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    log: std::path::PathBuf,
}

impl Browser {
    /// Opens `url` in a 1000×760 window at a device scale of 1.
    pub fn open(url: &str) -> Browser {
        let profile = tempfile::tempdir().expect("a profile directory");
        let log = profile.path().join("chromium.log");
        let child = Command::new(super::tools::chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1000,760",
                "--force-device-scale-factor=1",
                "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader",
                "--enable-logging=stderr",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .spawn()
            .expect("start Chromium");
        Browser {
            child,
            _profile: profile,
            log,
        }
    }

    /// The browser's console and errors so far, for a failure message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
