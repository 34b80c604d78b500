//! The `carto-auth` binary against the fake CARTO: stdout, stderr, exit
//! codes and cache files.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::{ChildSession, FakeCarto};

const BIN: &str = env!("CARGO_BIN_EXE_carto-auth");

struct Env {
    fake: FakeCarto,
    home: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            fake: FakeCarto::start(),
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("RUST_BACKTRACE", "1")
            .envs(self.fake.env())
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn creds(&self) -> PathBuf {
        self.fake.m2m_credentials_file(self.home.path())
    }

    fn cache(&self, mode: &str) -> PathBuf {
        self.home
            .path()
            .join(".carto-auth")
            .join(format!("token_{mode}.json"))
    }

    fn write_oauth_cache(&self, token: &str) {
        std::fs::create_dir_all(self.cache("oauth").parent().unwrap()).unwrap();
        self.fake.write_python_cache(&self.cache("oauth"), token);
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 1 with exactly one line on stderr, no backtrace.
fn assert_one_line_error(o: &Output, contains: &str) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout: {} stderr: {}",
        out(o),
        err(o)
    );
    let stderr = err(o);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("carto-auth: error: ") && stderr.contains(contains),
        "{stderr}"
    );
    assert!(
        !stderr.contains("backtrace") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn every_command_has_help_with_an_example_and_there_is_a_version() {
    let env = Env::new();
    for cmd in [
        "login",
        "token",
        "status",
        "logout",
        "dw-credentials",
        "layer-credentials",
    ] {
        let o = env.run(&[cmd, "--help"]);
        assert_eq!(o.status.code(), Some(0), "{cmd}");
        assert!(out(&o).contains("Example"), "{cmd}: {}", out(&o));
    }
    let top = env.run(&["--help"]);
    assert!(out(&top).contains("Exit codes: 0 success, 1 error, 2 usage error"));
    let v = env.run(&["--version"]);
    assert_eq!(
        out(&v).trim(),
        format!("carto-auth {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    for args in [
        &["bogus"][..],
        &["login", "--m2m", "x.json", "--org", "acme"],
        &["logout", "--m2m", "--all"],
        &[],
    ] {
        let o = env.run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
    }
}

#[test]
fn m2m_login_then_token_from_the_cache() {
    let env = Env::new();
    let creds = env.creds();
    let creds = creds.to_str().unwrap();
    let o = env.run(&["login", "--m2m", creds]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        out(&o).starts_with(&format!(
            "Logged in: M2M session, API {}",
            env.fake.api_base_url()
        )),
        "{}",
        out(&o)
    );
    let token = env.fake.issued_tokens()[0].clone();
    assert!(!out(&o).contains(&token));

    let o = env.run(&["token", "--m2m", creds]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(out(&o), format!("{token}\n"), "the token alone on stdout");
    assert_eq!(err(&o), "");
    assert_eq!(
        env.fake.requests("/oauth/token").len(),
        1,
        "token came from the cache"
    );
    let cached: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.cache("m2m")).unwrap()).unwrap();
    assert_eq!(cached["access_token"], token.as_str());
}

#[test]
fn token_without_login_or_terminal_fails_and_says_to_log_in() {
    let env = Env::new();
    let o = env.run(&["token"]);
    assert_one_line_error(&o, "run `carto-auth login`");
    assert_eq!(out(&o), "");
    assert!(
        env.fake.requests("/authorize").is_empty() && env.fake.requests("/oauth/token").is_empty()
    );
}

#[test]
fn token_uses_a_python_written_oauth_cache() {
    let env = Env::new();
    env.write_oauth_cache("python-token-123");
    let o = env.run(&["token"]);
    assert_eq!(out(&o), "python-token-123\n", "{}", err(&o));
}

#[test]
fn interactive_login_reads_the_pasted_address_from_stdin() {
    let env = Env::new();
    let mut cmd = env.command(&["login", "--no-browser", "--org", "acme"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = ChildSession::new(cmd.spawn().unwrap());
    let url = child.wait_line(Duration::from_secs(20), |l| {
        l.starts_with(&format!("{}/authorize?", env.fake.base))
    });
    assert!(url.ends_with("&organization=acme"), "{url}");
    let landed = env.fake.authorize(&url);
    child.write_line(&landed);
    child.wait_line(Duration::from_secs(20), |l| {
        l.starts_with("Signed in to CARTO. OAuth session")
    });
    assert!(child.child.wait().unwrap().success());
    let cached: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.cache("oauth")).unwrap()).unwrap();
    assert_eq!(cached["access_token"], env.fake.issued_tokens()[0].as_str());

    // Logged in now: `login` says so, `token` prints it.
    let o = env.run(&["login"]);
    assert!(
        out(&o).starts_with("Already logged in: OAuth session"),
        "{}",
        out(&o)
    );
    assert_eq!(
        out(&env.run(&["token"])),
        format!("{}\n", env.fake.issued_tokens()[0])
    );
}

/// `login --force` signs in again despite a good cache, and asks CARTO for
/// its sign-in form (prompt=login) so that another account can be chosen.
#[test]
fn login_force_signs_in_again_despite_a_good_cache() {
    let env = Env::new();
    env.write_oauth_cache("old-token");
    let mut cmd = env.command(&["login", "--force", "--no-browser"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = ChildSession::new(cmd.spawn().unwrap());
    let url = child.wait_line(Duration::from_secs(20), |l| {
        l.starts_with(&format!("{}/authorize?", env.fake.base))
    });
    assert_eq!(
        support::query_param(&url, "prompt").as_deref(),
        Some("login"),
        "{url}"
    );
    child.write_line(&env.fake.authorize(&url));
    assert!(child.child.wait().unwrap().success());
    assert_eq!(
        out(&env.run(&["token"])),
        format!("{}\n", env.fake.issued_tokens()[0])
    );
}

#[test]
fn token_signs_in_when_a_terminal_is_attached() {
    let env = Env::new();
    // `script` gives the command a pseudo-terminal as stdin, as a shell would.
    let shell_cmd = format!("{BIN} token --no-browser");
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &shell_cmd, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", env.home.path())
        .envs(env.fake.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = ChildSession::new(cmd.spawn().unwrap());
    let url = child.wait_line(Duration::from_secs(20), |l| {
        l.trim_end()
            .starts_with(&format!("{}/authorize?", env.fake.base))
    });
    let landed = env.fake.authorize(url.trim_end());
    child.write_line(&landed);
    let token_line = child.wait_line(Duration::from_secs(20), |l| {
        l.trim_end().starts_with(support::jwt::PREFIX)
    });
    assert!(child.child.wait().unwrap().success());
    assert_eq!(token_line.trim_end(), env.fake.issued_tokens()[0]);
}

#[test]
fn status_shows_sessions_with_the_token_masked() {
    let env = Env::new();
    let creds = env.creds();
    env.run(&["login", "--m2m", creds.to_str().unwrap()]);
    std::fs::write(env.cache("oauth"), "{broken").unwrap();
    let token = env.fake.issued_tokens()[0].clone();

    let o = env.run(&["status"]);
    assert_eq!(o.status.code(), Some(0));
    let text = out(&o);
    assert!(
        text.contains("unusable: the token cache") && text.contains("not valid JSON"),
        "{text}"
    );
    assert!(
        text.contains(&format!("API base URL  {}", env.fake.api_base_url())),
        "{text}"
    );
    let masked = support::masked(&token);
    assert!(
        text.contains(&masked) && text.contains("expires in 2"),
        "{text}"
    );
    assert!(text.contains("written by    carto-auth (Rust)"), "{text}");
    assert!(
        text.contains(&format!("client id     {}", support::M2M_ID)),
        "{text}"
    );
    assert!(!text.contains(&token), "{text}");

    let o = env.run(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(json[0]["mode"], "OAuth");
    assert_eq!(json[0]["state"], "unusable");
    assert_eq!(json[1]["mode"], "M2M");
    assert_eq!(json[1]["state"], "logged_in");
    assert_eq!(json[1]["token"], masked.as_str());
    assert_eq!(json[1]["subject"], format!("{}@clients", support::M2M_ID));
    assert_eq!(json[1]["client_id"], support::M2M_ID);
    assert_eq!(json[1]["cache_file"], env.cache("m2m").to_str().unwrap());
    assert!(!out(&o).contains(&token));
}

#[test]
fn logout_removes_the_files_it_owns_and_says_which() {
    let env = Env::new();
    let creds = env.creds();
    env.write_oauth_cache("t");
    env.run(&["login", "--m2m", creds.to_str().unwrap()]);
    let o = env.run(&["logout"]);
    assert_eq!(
        out(&o),
        format!("Removed {}\n", env.cache("oauth").display())
    );
    assert!(!env.cache("oauth").exists() && env.cache("m2m").exists());
    let o = env.run(&["logout"]);
    assert_eq!(
        out(&o),
        format!("No cached token at {}\n", env.cache("oauth").display())
    );
    let o = env.run(&["logout", "--all"]);
    assert!(
        out(&o).contains(&format!("Removed {}", env.cache("m2m").display())),
        "{}",
        out(&o)
    );
    assert!(!env.cache("m2m").exists());
    assert!(creds.exists(), "logout must not touch other files");
    // Lock files stay: another process may hold one.
    for mode in ["oauth", "m2m"] {
        let mut lock = env.cache(mode).into_os_string();
        lock.push(".lock");
        assert!(Path::new(&lock).exists(), "{mode} lock");
    }
}

#[test]
fn dw_and_layer_credentials() {
    let env = Env::new();
    let creds = env.creds();
    let creds = creds.to_str().unwrap();
    let o = env.run(&["dw-credentials", "--m2m", creds]);
    let first = &env.fake.dw_tokens()[0];
    assert_eq!(
        out(&o),
        format!("carto-dw-ac-fake\n{first}\n"),
        "{}",
        err(&o)
    );
    let o = env.run(&["dw-credentials", "--m2m", creds, "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out(&o)).unwrap(),
        serde_json::json!({"projectId": "carto-dw-ac-fake", "token": env.fake.dw_tokens()[1]})
    );
    let o = env.run(&["layer-credentials", "--m2m", creds]);
    let json: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"apiVersion": "v3", "apiBaseUrl": env.fake.api_base_url(), "accessToken": env.fake.issued_tokens()[0]})
    );
}

#[test]
fn errors_are_one_line_and_name_what_to_fix() {
    let env = Env::new();
    let bad = env.home.path().join("creds.json");
    std::fs::write(&bad, r#"{"api_base_url": "https://x", "client_id": "id"}"#).unwrap();
    let o = env.run(&["token", "--m2m", bad.to_str().unwrap()]);
    assert_one_line_error(&o, "creds.json has no \"client_secret\"");

    let o = env.run(&["token", "--m2m", "/nonexistent/creds.json"]);
    assert_one_line_error(
        &o,
        "cannot read the CARTO credentials file /nonexistent/creds.json",
    );

    env.fake
        .fault("/oauth/token", support::Fault::Status(500, String::new()));
    let creds = env.creds();
    let o = env.run(&["token", "--m2m", creds.to_str().unwrap(), "--no-cache"]);
    assert_one_line_error(&o, "answered HTTP 500");
    assert_eq!(out(&o), "");

    let mut cmd = env.command(&["token", "--m2m", creds.to_str().unwrap()]);
    cmd.env("CARTO_AUTH_URL", "not a url");
    let o = cmd.output().unwrap();
    assert_one_line_error(&o, "CARTO_AUTH_URL");
}

/// Every command ends quietly when its reader has gone (`| head -1`): exit
/// 0 or 1, no panic message. The pipe's read end is closed before the
/// command starts, so every write fails, deterministically.
#[test]
fn every_command_ends_quietly_on_a_closed_stdout() {
    let env = Env::new();
    let creds = env.creds();
    let creds = creds.to_str().unwrap();
    env.run(&["login", "--m2m", creds]);
    env.write_oauth_cache(
        &env.fake
            .mint_token(&support::jwt::Subject::user(support::USER_ANA), 3600),
    );
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["token"],
        &["token", "--m2m", creds],
        &["login"],
        &["login", "--m2m", creds],
        &["dw-credentials", "--m2m", creds],
        &["dw-credentials", "--m2m", creds, "--json"],
        &["layer-credentials", "--m2m", creds],
        &["logout", "--m2m"],
        &["--help"],
        &["status", "--help"],
        &["--version"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = env.command(args).stdout(writer).output().unwrap();
        let stderr = err(&o);
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{args:?}: {:?} {stderr}",
            o.status
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
}

/// `CARTO_API_TOKEN` (an API Access Token in CI) is used without a prompt or
/// a cache, before any stored login, and `status` says so.
#[test]
fn an_api_token_in_the_environment_is_used_before_any_login() {
    let env = Env::new();
    env.write_oauth_cache(
        &env.fake
            .mint_token(&support::jwt::Subject::user(support::USER_ANA), 3600),
    );
    let ci_token = env
        .fake
        .mint_token(&support::jwt::Subject::user("auth0|ci-bot"), 3600);
    let api = env.fake.api_base_url();
    let run = |args: &[&str]| {
        env.command(args)
            .env("CARTO_API_TOKEN", &ci_token)
            .env("CARTO_API_BASE_URL", &api)
            .output()
            .unwrap()
    };
    let o = run(&["token"]);
    assert_eq!(out(&o), format!("{ci_token}\n"), "{}", err(&o));
    let o = run(&["layer-credentials"]);
    assert!(
        out(&o).contains(&format!("\"apiBaseUrl\":\"{api}\"")),
        "{}",
        out(&o)
    );
    let o = run(&["login"]);
    assert!(
        out(&o).starts_with("CARTO_API_TOKEN is set, so nothing needs logging in"),
        "{}",
        out(&o)
    );
    let o = run(&["status"]);
    let text = out(&o);
    assert!(
        text.starts_with("token CARTO_API_TOKEN (used before any cached login)"),
        "{text}"
    );
    assert!(
        text.contains(&support::masked(&ci_token)) && !text.contains(&ci_token),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&out(&run(&["status", "--json"]))).unwrap();
    assert_eq!(
        (json[0]["source"].as_str(), json[0]["subject"].as_str()),
        (Some("environment"), Some("auth0|ci-bot"))
    );
    assert!(
        env.fake.requests("/oauth/token").is_empty() && env.fake.requests("/authorize").is_empty()
    );
    assert!(
        env.fake.requests("/accounts").is_empty(),
        "CARTO_API_BASE_URL skips discovery"
    );

    // Expired: an error that says so, never a prompt.
    let old = env
        .fake
        .mint_token(&support::jwt::Subject::user("auth0|ci-bot"), -60);
    let o = env
        .command(&["token"])
        .env("CARTO_API_TOKEN", &old)
        .env("CARTO_API_BASE_URL", &api)
        .output()
        .unwrap();
    assert_one_line_error(&o, "the CARTO access token in CARTO_API_TOKEN expired");
}

/// Input that ends after a refused paste (one line, then stdin closed):
/// the error is the refusal, which says what went wrong, not "no input".
#[test]
fn a_refused_paste_then_the_end_of_input_reports_the_refusal() {
    let env = Env::new();
    let mut cmd = env.command(&["login", "--no-browser"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "a-code-carto-never-issued").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(env.fake.requests("/oauth/token").len(), 1, "{}", err(&o));
    let last = err(&o).lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with("carto-auth: error: ") && last.contains("invalid_grant"),
        "{}",
        err(&o)
    );
    assert!(!last.contains("no answer can be read"), "{last}");
    assert_eq!(o.status.code(), Some(1));
}

/// Signs in through the paste flow with `args` and the `extra` variables:
/// the sign-in address is read from the output and CARTO's answer pasted
/// back. Whether it succeeded, its stdout and its stderr.
fn paste_login(env: &Env, args: &[&str], extra: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = env.command(args);
    cmd.envs(extra.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = ChildSession::new(cmd.spawn().unwrap());
    let url = child.wait_line(Duration::from_secs(20), |l| {
        l.starts_with(&format!("{}/authorize?", env.fake.base))
    });
    child.write_line(&env.fake.authorize(&url));
    let ok = child.finish(Duration::from_secs(20));
    let stream = |err: bool| {
        child
            .seen
            .iter()
            .filter(|(e, _)| *e == err)
            .map(|(_, l)| format!("{l}\n"))
            .collect::<String>()
    };
    (ok, stream(false), stream(true))
}

fn a_user_token(env: &Env) -> String {
    env.fake
        .mint_token(&support::jwt::Subject::user(support::USER_ANA), 3600)
}

/// `login --org acme` over a cached login that is not acme's signs in (the
/// library decides, not the CLI), and does not then claim that it was
/// already logged in; once it is acme's, it says so without signing in.
#[test]
fn login_with_an_org_the_cache_lacks_signs_in_and_never_says_already_logged_in() {
    let env = Env::new();
    let old = a_user_token(&env);
    env.write_oauth_cache(&old);
    let (ok, stdout, stderr) = paste_login(&env, &["login", "--no-browser", "--org", "acme"], &[]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("Signed in to CARTO. OAuth session"),
        "{stderr}"
    );
    assert!(
        !stdout.contains("Already logged in") && !stderr.contains("Already logged in"),
        "{stdout}"
    );
    let cached = support::read_json(&env.cache("oauth"));
    let new = env.fake.issued_tokens().last().unwrap().clone();
    assert_eq!(
        (cached["access_token"].as_str(), cached["org"].as_str()),
        (Some(new.as_str()), Some("acme"))
    );
    assert_ne!(new, old);

    let o = env.run(&["login", "--org", "acme"]);
    assert!(
        out(&o).starts_with("Already logged in: OAuth session"),
        "{}",
        out(&o)
    );
    assert_eq!(
        out(&env.run(&["token", "--org", "acme"])),
        format!("{new}\n")
    );
    assert_eq!(env.fake.requests("/oauth/token").len(), 1);
}

/// Without a terminal, a command whose options the cached login does not
/// fit (another organization, another API) fails at once: it never starts
/// a sign-in that nobody could answer.
#[test]
fn without_a_terminal_no_sign_in_starts_when_the_cache_does_not_fit() {
    let env = Env::new();
    let token = a_user_token(&env);
    env.write_oauth_cache(&token);
    for args in [
        &["token", "--org", "acme"][..],
        &["token", "--api-base-url", "https://gcp-eu.api.example"],
        &["dw-credentials", "--org", "acme"],
        &["layer-credentials", "--org", "acme"],
    ] {
        let o = env.run(args);
        let stderr = err(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("carto-auth: error: not logged in")
                && last.contains("run `carto-auth login` with the same options"),
            "{args:?}: {stderr}"
        );
        assert!(
            !stderr.contains("/authorize"),
            "{args:?}: a sign-in was started: {stderr}"
        );
        assert_eq!(out(&o), "", "{args:?}");
    }
    // What the cache does fit is served, as before.
    assert_eq!(out(&env.run(&["token"])), format!("{token}\n"));
}

/// `CARTO_API_BASE_URL`, which every failed discovery suggests, is used by
/// each kind of session: a sign-in (discovery skipped), a cached login
/// that has no URL, an M2M login (before the file's).
#[test]
fn carto_api_base_url_is_honoured_by_every_session_kind() {
    let env = Env::new();
    env.fake
        .fault("/accounts", support::Fault::Status(500, String::new()));
    let api = format!("{}/env-api", env.fake.base);
    let var = [("CARTO_API_BASE_URL", api.as_str())];
    let (ok, _, stderr) = paste_login(&env, &["login", "--no-browser"], &var);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(&format!("Signed in to CARTO. OAuth session, API {api},")),
        "{stderr}"
    );
    assert!(env.fake.requests("/accounts").is_empty(), "no discovery");
    assert_eq!(support::read_json(&env.cache("oauth"))["api_base_url"], api);

    // A cached login whose discovery had failed: no terminal needed.
    let token = a_user_token(&env);
    std::fs::write(
        env.cache("oauth"),
        format!(
            r#"{{"api_base_url": null, "access_token": "{token}", "expiration": 99999999999}}"#
        ),
    )
    .unwrap();
    let layer = |args: &[&str]| {
        let o = env.command(args).envs(var).output().unwrap();
        serde_json::from_str::<serde_json::Value>(&out(&o))
            .unwrap_or_else(|_| panic!("{args:?}: {}", err(&o)))
    };
    let json = layer(&["layer-credentials"]);
    assert_eq!(
        (json["apiBaseUrl"].as_str(), json["accessToken"].as_str()),
        (Some(api.as_str()), Some(token.as_str()))
    );

    let creds = env.creds();
    let json = layer(&["layer-credentials", "--m2m", creds.to_str().unwrap()]);
    assert_eq!(json["apiBaseUrl"], api.as_str());
    assert_eq!(support::read_json(&env.cache("m2m"))["api_base_url"], api);
}

/// An API base URL that is not https is refused where it enters, naming
/// that place and how to write it, before any token is requested or sent.
#[test]
fn an_api_base_url_that_is_not_https_is_an_error_naming_where_it_came_from() {
    let env = Env::new();
    let creds = env.creds();
    let creds = creds.to_str().unwrap();
    let fix = "Write it as https://gcp-us-east1.api.carto.com";
    for (args, value) in [
        (&["token"][..], "gcp-us-east1.api.carto.com"),
        (
            &["token", "--m2m", creds],
            "http://gcp-us-east1.api.carto.com",
        ),
    ] {
        let o = env
            .command(args)
            .env("CARTO_API_BASE_URL", value)
            .env("CARTO_API_TOKEN", "ci-token")
            .output()
            .unwrap();
        assert_one_line_error(
            &o,
            &format!("the API base URL in CARTO_API_BASE_URL is not usable ({value:?})"),
        );
        assert!(err(&o).trim_end().ends_with(fix), "{}", err(&o));
    }

    let file = env.home.path().join("creds-no-scheme.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"api_base_url": "gcp-us-east1.api.carto.com", "client_id": "{}", "client_secret": "{}"}}"#,
            support::M2M_ID,
            support::M2M_SECRET
        ),
    )
    .unwrap();
    let o = env.run(&["token", "--m2m", file.to_str().unwrap()]);
    assert_one_line_error(
        &o,
        &format!(
            "the API base URL in {} (key \"api_base_url\") is not usable",
            file.display()
        ),
    );
    assert!(err(&o).trim_end().ends_with(fix), "{}", err(&o));

    // `status` says why the variable is not used, instead of "unknown".
    let o = env
        .command(&["status"])
        .env("CARTO_API_TOKEN", "ci-token")
        .env("CARTO_API_BASE_URL", "gcp-us-east1.api.carto.com")
        .output()
        .unwrap();
    assert!(
        out(&o).contains(
            "API base URL  CARTO_API_BASE_URL is not usable (\"gcp-us-east1.api.carto.com\"): \
             write it as an https:// URL"
        ),
        "{}",
        out(&o)
    );

    let o = env.run(&[
        "token",
        "--api-base-url",
        "http://gcp-us-east1.api.carto.com",
    ]);
    assert_one_line_error(&o, "--api-base-url");
    assert!(err(&o).trim_end().ends_with(fix), "{}", err(&o));
    assert!(env.fake.requests("/oauth/token").is_empty());
}
