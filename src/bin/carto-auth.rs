//! `carto-auth`: log in to CARTO once, then reuse the token from shells, CI
//! jobs and other languages (`TOKEN=$(carto-auth token)`).
//!
//! Exit codes: 0 success, 1 error (one line on stderr), 2 usage error. A
//! closed stdout (`carto-auth status | head -1`) ends the command quietly.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use carto_auth::{CachedToken, CartoAuth, Error, Mode, TokenSource};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

/// `CARTO_API_TOKEN`: an API Access Token that overrides any stored login,
/// as in CARTO's own CLI.
const API_TOKEN_VAR: &str = "CARTO_API_TOKEN";

#[derive(Parser)]
#[command(
    name = "carto-auth",
    version,
    about = "Log in to CARTO and print tokens for shells, CI jobs and other programs",
    long_about = "Log in to CARTO and print tokens for shells, CI jobs and other programs.\n\n\
        Tokens are cached in ~/.carto-auth/token_oauth.json and token_m2m.json, the files \
        of CARTO's Python package carto-auth, so either can reuse the other's login.",
    after_help = "Examples:\n  carto-auth login\n  export CARTO_TOKEN=$(carto-auth token)\n  \
        carto-auth token --m2m carto_credentials.json\n\n\
        Exit codes: 0 success, 1 error, 2 usage error.\n\
        Environment: CARTO_API_TOKEN (with CARTO_API_BASE_URL) is used instead of any stored \
        login, for CI; CARTO_AUTH_URL, CARTO_ACCOUNTS_URL, CARTO_AUTH_REDIRECT_URI, \
        CARTO_AUTH_PASTE_REDIRECT_URI move the endpoints; CARTO_AUTH_OPEN_BROWSER=0|1 \
        overrides the guess about a local browser; CARTO_AUTH_DEVICE_FLOW=1 turns the device \
        flow on."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Log in: in the browser (or by pasting a code, or with a device code), or with an M2M credentials file
    #[command(
        after_help = "Examples:\n  carto-auth login\n  carto-auth login --no-browser --org my-sso-org\n  \
        carto-auth login --device\n  carto-auth login --m2m carto_credentials.json\n\n\
        With CARTO_API_TOKEN set, nothing needs logging in (use --force to sign in anyway)."
    )]
    Login {
        #[command(flatten)]
        login: LoginArgs,
        /// Sign in again even if the cached token is still good, and show CARTO's sign-in form (to switch accounts)
        #[arg(long)]
        force: bool,
    },
    /// Print the access token alone on stdout, logging in first if needed
    #[command(
        after_help = "Examples:\n  curl -H \"Authorization: Bearer $(carto-auth token)\" \"$API/v3/...\"\n  \
        carto-auth token --m2m carto_credentials.json\n\n\
        Without --m2m and without a valid cached token (or CARTO_API_TOKEN), this signs in \
        only when a terminal is attached; otherwise it fails and asks you to run \
        `carto-auth login`."
    )]
    Token {
        #[command(flatten)]
        login: LoginArgs,
    },
    /// Show the sessions: CARTO_API_TOKEN and the cache files (mode, API base URL, expiry, who wrote it; the token masked)
    #[command(after_help = "Examples:\n  carto-auth status\n  carto-auth status --json")]
    Status {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        /// Show this cache file only
        #[arg(long, value_name = "PATH")]
        cache_file: Option<PathBuf>,
    },
    /// Remove the cached token (the OAuth one unless --m2m or --all)
    #[command(
        after_help = "Examples:\n  carto-auth logout\n  carto-auth logout --m2m\n  carto-auth logout --all\n\n\
        A cache file that is a symbolic link keeps its link; the token it leads to is removed."
    )]
    Logout {
        /// Remove the M2M cache instead
        #[arg(long, conflicts_with = "all")]
        m2m: bool,
        /// Remove both cache files
        #[arg(long)]
        all: bool,
        /// Remove this cache file instead
        #[arg(long, value_name = "PATH", conflicts_with_all = ["m2m", "all"])]
        cache_file: Option<PathBuf>,
    },
    /// Print the CARTO Data Warehouse project id and token
    #[command(
        after_help = "Output: the project id on the first line, the token on the second \
        (or JSON with --json).\n\nExamples:\n  carto-auth dw-credentials --json\n  \
        carto-auth dw-credentials --m2m carto_credentials.json"
    )]
    DwCredentials {
        #[command(flatten)]
        login: LoginArgs,
        /// Print JSON {\"projectId\", \"token\"}
        #[arg(long)]
        json: bool,
    },
    /// Print the credentials deck.gl's CartoLayer takes, as JSON
    #[command(after_help = "Example:\n  carto-auth layer-credentials > credentials.json")]
    LayerCredentials {
        #[command(flatten)]
        login: LoginArgs,
    },
}

#[derive(Args)]
struct LoginArgs {
    /// Use this M2M credentials file (JSON with api_base_url, client_id, client_secret)
    #[arg(long, value_name = "FILE")]
    m2m: Option<PathBuf>,
    /// Do not open a browser: show the sign-in address and read the pasted answer
    #[arg(long, conflicts_with = "m2m")]
    no_browser: bool,
    /// Sign in with a device code: approve it on any device, nothing to paste (falls back to the browser or paste flow where CARTO does not allow it)
    #[arg(long, conflicts_with = "m2m")]
    device: bool,
    /// SSO organization to sign in with
    #[arg(long, value_name = "NAME", conflicts_with = "m2m")]
    org: Option<String>,
    /// API base URL; skips its discovery after signing in
    #[arg(long, value_name = "URL", conflicts_with = "m2m")]
    api_base_url: Option<String>,
    /// Neither read nor write the token cache
    #[arg(long)]
    no_cache: bool,
    /// Token cache file (default ~/.carto-auth/token_oauth.json or token_m2m.json)
    #[arg(long, value_name = "PATH")]
    cache_file: Option<PathBuf>,
}

/// How a command ends other than successfully.
enum Failure {
    /// An error, said in one line.
    Error(String),
    /// stdout was closed by its reader: nothing to say, nobody to say it to.
    ClosedPipe,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::Error(error.to_string().replace('\n', " "))
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Error(message)
    }
}

/// Writes to stdout. `println!` panics when the reader has gone
/// (`carto-auth status | head -1`); this ends the command quietly instead.
fn out(text: impl std::fmt::Display) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                Failure::ClosedPipe
            } else {
                Failure::Error(format!("cannot write to stdout: {e}"))
            }
        })
}

fn env_token() -> Option<String> {
    std::env::var(API_TOKEN_VAR)
        .ok()
        .filter(|t| !t.trim().is_empty())
}

impl LoginArgs {
    /// Logs in. `interactive: false` refuses to start a sign-in (for `token`
    /// and friends without a terminal, where nobody could answer): the
    /// library says whether its login would need one, this never guesses.
    fn login(&self, interactive: bool, force: bool) -> Result<CartoAuth, Failure> {
        if let Some(file) = &self.m2m {
            let mut builder = CartoAuth::m2m(file).use_cache(!self.no_cache);
            if let Some(path) = &self.cache_file {
                builder = builder.cache_filepath(path);
            }
            return Ok(builder.login()?);
        }
        let builder = self.oauth(force);
        if interactive {
            return Ok(builder.login()?);
        }
        builder.existing_session()?.ok_or_else(|| {
            Failure::Error(
                "not logged in (no cached token fits these options, no CARTO_API_TOKEN) and no \
                 terminal to sign in from; run `carto-auth login` with the same options first, \
                 set CARTO_API_TOKEN, or use --m2m FILE in automated jobs"
                    .into(),
            )
        })
    }

    fn oauth(&self, force: bool) -> carto_auth::OAuthBuilder {
        let mut builder = CartoAuth::oauth()
            .use_cache(!self.no_cache)
            .force_login(force);
        if self.no_browser {
            builder = builder.open_browser(false);
        }
        if self.device {
            builder = builder.device_flow(true);
        }
        if let Some(path) = &self.cache_file {
            builder = builder.cache_filepath(path);
        }
        if let Some(org) = &self.org {
            builder = builder.org(org);
        }
        if let Some(url) = &self.api_base_url {
            builder = builder.api_base_url(url);
        }
        builder
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) | Err(Failure::ClosedPipe) => ExitCode::SUCCESS,
        Err(Failure::Error(e)) => {
            // stderr may be closed too: nothing more to do then.
            let _ = writeln!(std::io::stderr(), "carto-auth: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(command: Command) -> Result<(), Failure> {
    let terminal = std::io::stdin().is_terminal();
    match command {
        Command::Login { login, force } => {
            let auth = login.login(true, force)?;
            // Where the token came from is the login's own answer.
            match (auth.mode(), auth.token_source()) {
                (_, TokenSource::Environment) => out(format!(
                    "{API_TOKEN_VAR} is set, so nothing needs logging in: {}. Unset it to use \
                     the cached login, or use --force to sign in anyway.",
                    auth.summary()
                ))?,
                (Mode::OAuth, TokenSource::Cache(_)) => out(format!(
                    "Already logged in: {}. Use --force to sign in again.",
                    auth.summary()
                ))?,
                // An interactive login has just printed its own confirmation.
                (Mode::OAuth, _) => {}
                _ => out(format!("Logged in: {}", auth.summary()))?,
            }
        }
        Command::Token { login } => {
            let auth = login.login(terminal, false)?;
            out(auth.get_access_token()?)?;
        }
        Command::DwCredentials { login, json } => {
            let auth = login.login(terminal, false)?;
            let (project, token) = auth.get_carto_dw_credentials()?;
            if json {
                out(json!({"projectId": project, "token": token}))?;
            } else {
                out(format!("{project}\n{token}"))?;
            }
        }
        Command::LayerCredentials { login } => {
            let auth = login.login(terminal, false)?;
            out(auth.get_layer_credentials()?.to_json())?;
        }
        Command::Status { json, cache_file } => status(json, cache_file)?,
        Command::Logout {
            m2m,
            all,
            cache_file,
        } => {
            let paths: Vec<PathBuf> = match cache_file {
                Some(path) => vec![path],
                None => {
                    let modes: &[Mode] = match (m2m, all) {
                        (_, true) => &[Mode::OAuth, Mode::M2m],
                        (true, false) => &[Mode::M2m],
                        (false, false) => &[Mode::OAuth],
                    };
                    modes
                        .iter()
                        .filter_map(|m| CachedToken::default_path(*m))
                        .collect()
                }
            };
            for path in paths {
                if CachedToken::remove(&path)? {
                    out(format!("Removed {}", path.display()))?;
                } else {
                    out(format!("No cached token at {}", path.display()))?;
                }
            }
            if env_token().is_some() {
                out(format!(
                    "{API_TOKEN_VAR} is still set in this environment and is used before any \
                     cached login."
                ))?;
            }
        }
    }
    Ok(())
}

/// One row of `status`, as JSON (the text output is made from it).
fn cache_entry(mode: Option<Mode>, path: PathBuf) -> Value {
    let mode_name = mode.map_or("file".to_string(), |m| m.to_string());
    match CachedToken::read(&path) {
        Ok(Some(t)) => json!({
            "mode": mode_name,
            "source": "cache",
            "cache_file": path,
            "state": if t.is_usable() { "logged_in" } else if t.api_base_url().is_none() { "incomplete" } else { "expired" },
            "api_base_url": t.api_base_url(),
            "expiration": t.expiration(),
            "expires": t.describe_expiry(),
            "token": t.masked_token(),
            "subject": t.subject(),
            "client_id": t.client_id(),
            "org": t.org(),
            "written_by": if t.written_by_python() { "the Python package carto-auth" } else { "carto-auth (Rust)" },
        }),
        Ok(None) => {
            json!({"mode": mode_name, "source": "cache", "cache_file": path, "state": "logged_out"})
        }
        Err(e) => json!({
            "mode": mode_name,
            "source": "cache",
            "cache_file": path,
            "state": "unusable",
            "problem": Failure::from(e).message(),
        }),
    }
}

impl Failure {
    fn message(&self) -> String {
        match self {
            Failure::Error(message) => message.clone(),
            Failure::ClosedPipe => "stdout is closed".into(),
        }
    }
}

fn status(json: bool, cache_file: Option<PathBuf>) -> Result<(), Failure> {
    let mut entries = Vec::new();
    if let Some(token) = env_token().filter(|_| cache_file.is_none()) {
        let url = std::env::var("CARTO_API_BASE_URL").unwrap_or_default();
        let auth = CartoAuth::from_token(token, url.clone());
        // Set but refused (not https): say so rather than "unknown".
        let url_problem =
            (auth.get_api_base_url().is_none() && !url.trim().is_empty()).then(|| {
                format!(
                    "CARTO_API_BASE_URL is not usable ({url:?}): write it as an https:// URL \
                 (http:// only on this machine)"
                )
            });
        entries.push(json!({
            "mode": "token",
            "source": "environment",
            "variable": API_TOKEN_VAR,
            "state": if auth.get_access_token().is_ok() { "logged_in" } else { "expired" },
            "api_base_url": auth.get_api_base_url(),
            "expires": auth.describe_expiry(),
            "token": auth.masked_token(),
            "subject": auth.subject(),
            "problem": url_problem,
        }));
    }
    let files: Vec<(Option<Mode>, PathBuf)> = match cache_file {
        Some(path) => vec![(None, path)],
        None => [Mode::OAuth, Mode::M2m]
            .into_iter()
            .filter_map(|m| CachedToken::default_path(m).map(|p| (Some(m), p)))
            .collect(),
    };
    if files.is_empty() && entries.is_empty() {
        return Err(
            "the home directory is unknown; set HOME or pass --cache-file"
                .to_string()
                .into(),
        );
    }
    entries.extend(
        files
            .into_iter()
            .map(|(mode, path)| cache_entry(mode, path)),
    );
    if json {
        return out(Value::Array(entries));
    }
    for e in entries {
        let text = |k: &str| e[k].as_str().unwrap_or("").to_string();
        let url_and_token = |unknown: &str| -> Result<(), Failure> {
            let url = e["api_base_url"].as_str().unwrap_or(unknown);
            out(format!("      API base URL  {url}"))?;
            out(format!(
                "      token         {} ({})",
                text("token"),
                text("expires")
            ))
        };
        if e["source"] == "environment" {
            out(format!(
                "token {API_TOKEN_VAR} (used before any cached login)"
            ))?;
            url_and_token(
                e["problem"]
                    .as_str()
                    .unwrap_or("(unknown: set CARTO_API_BASE_URL)"),
            )?;
            continue;
        }
        out(format!("{:<5} {}", text("mode"), text("cache_file")))?;
        match text("state").as_str() {
            "logged_out" => out("      not logged in")?,
            "unusable" => out(format!("      unusable: {}", text("problem")))?,
            state => {
                url_and_token("(none)")?;
                for (key, label) in [
                    ("subject", "subject"),
                    ("client_id", "client id"),
                    ("org", "organization"),
                ] {
                    if let Some(value) = e[key].as_str() {
                        out(format!("      {label:<13} {value}"))?;
                    }
                }
                out(format!("      written by    {}", text("written_by")))?;
                if state != "logged_in" {
                    out("      a login is needed: run `carto-auth login`")?;
                }
            }
        }
    }
    Ok(())
}
