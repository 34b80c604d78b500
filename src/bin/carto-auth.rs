//! `carto-auth`: log in to CARTO once, then reuse the token from shells, CI
//! jobs and other languages (`TOKEN=$(carto-auth token)`).
//!
//! Exit codes: 0 success, 1 error (one line on stderr), 2 usage error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use carto_auth::{CachedToken, CartoAuth, Error, Mode};
use clap::{Args, Parser, Subcommand};

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
        Environment: CARTO_AUTH_URL, CARTO_ACCOUNTS_URL, CARTO_AUTH_REDIRECT_URI, \
        CARTO_AUTH_PASTE_REDIRECT_URI move the endpoints; CARTO_AUTH_OPEN_BROWSER=0|1 \
        overrides the guess about a local browser."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Log in: in the browser (or by pasting a code), or with an M2M credentials file
    #[command(
        after_help = "Examples:\n  carto-auth login\n  carto-auth login --no-browser --org my-sso-org\n  \
        carto-auth login --m2m carto_credentials.json"
    )]
    Login {
        #[command(flatten)]
        login: LoginArgs,
        /// Sign in again even if the cached token is still good
        #[arg(long)]
        force: bool,
    },
    /// Print the access token alone on stdout, logging in first if needed
    #[command(
        after_help = "Examples:\n  curl -H \"Authorization: Bearer $(carto-auth token)\" \"$API/v3/...\"\n  \
        carto-auth token --m2m carto_credentials.json\n\n\
        Without --m2m and without a valid cached token, this signs in only when a terminal is \
        attached; otherwise it fails and asks you to run `carto-auth login`."
    )]
    Token {
        #[command(flatten)]
        login: LoginArgs,
    },
    /// Show the cached sessions (mode, API base URL, expiry, cache file; the token masked)
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
        after_help = "Examples:\n  carto-auth logout\n  carto-auth logout --m2m\n  carto-auth logout --all"
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

impl LoginArgs {
    fn mode(&self) -> Mode {
        if self.m2m.is_some() {
            Mode::M2m
        } else {
            Mode::OAuth
        }
    }

    fn cache_path(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_file
            .clone()
            .or_else(|| CachedToken::default_path(self.mode()))
    }

    fn cached_is_usable(&self) -> bool {
        self.cache_path()
            .and_then(|p| CachedToken::read(p).ok().flatten())
            .is_some_and(|t| t.is_usable())
    }

    /// Logs in. `interactive: false` refuses to start a browser login (for
    /// `token` and friends without a terminal, where nobody could answer).
    fn login(&self, interactive: bool, force: bool) -> Result<CartoAuth, String> {
        if let Some(file) = &self.m2m {
            let mut builder = CartoAuth::m2m(file).use_cache(!self.no_cache);
            if let Some(path) = &self.cache_file {
                builder = builder.cache_filepath(path);
            }
            return builder.login().map_err(message);
        }
        if !interactive && (force || !self.cached_is_usable()) {
            return Err(
                "not logged in (no valid cached token) and no terminal to sign in from; \
                        run `carto-auth login` first, or use --m2m FILE in automated jobs"
                    .into(),
            );
        }
        let mut builder = CartoAuth::oauth()
            .use_cache(!self.no_cache)
            .open_browser(!self.no_browser)
            .force_login(force);
        if let Some(path) = &self.cache_file {
            builder = builder.cache_filepath(path);
        }
        if let Some(org) = &self.org {
            builder = builder.org(org);
        }
        if let Some(url) = &self.api_base_url {
            builder = builder.api_base_url(url);
        }
        builder.login().map_err(message)
    }
}

/// Errors are one line: the message already says what to do.
fn message(error: Error) -> String {
    error.to_string().replace('\n', " ")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("carto-auth: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    let terminal = std::io::stdin().is_terminal();
    match command {
        Command::Login { login, force } => {
            let was_cached = !force && login.mode() == Mode::OAuth && login.cached_is_usable();
            let auth = login.login(true, force)?;
            match (auth.mode(), was_cached) {
                (Mode::OAuth, true) => println!(
                    "Already logged in: {}. Use --force to sign in again.",
                    auth.summary()
                ),
                // An interactive login has just printed its own confirmation.
                (Mode::OAuth, false) => {}
                _ => println!("Logged in: {}", auth.summary()),
            }
        }
        Command::Token { login } => {
            let auth = login.login(terminal, false)?;
            println!("{}", auth.get_access_token().map_err(message)?);
        }
        Command::DwCredentials { login, json } => {
            let auth = login.login(terminal, false)?;
            let (project, token) = auth.get_carto_dw_credentials().map_err(message)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"projectId": project, "token": token})
                );
            } else {
                println!("{project}\n{token}");
            }
        }
        Command::LayerCredentials { login } => {
            let auth = login.login(terminal, false)?;
            println!(
                "{}",
                auth.get_layer_credentials().map_err(message)?.to_json()
            );
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
                if CachedToken::remove(&path).map_err(message)? {
                    println!("Removed {}", path.display());
                } else {
                    println!("No cached token at {}", path.display());
                }
            }
        }
    }
    Ok(())
}

fn status(json: bool, cache_file: Option<PathBuf>) -> Result<(), String> {
    let files: Vec<(Option<Mode>, PathBuf)> = match cache_file {
        Some(path) => vec![(None, path)],
        None => [Mode::OAuth, Mode::M2m]
            .into_iter()
            .filter_map(|m| CachedToken::default_path(m).map(|p| (Some(m), p)))
            .collect(),
    };
    if files.is_empty() {
        return Err("the home directory is unknown; set HOME or pass --cache-file".into());
    }
    let mut entries = Vec::new();
    for (mode, path) in files {
        let mode_name = mode.map_or("file".to_string(), |m| m.to_string());
        let entry = match CachedToken::read(&path) {
            Ok(Some(t)) => serde_json::json!({
                "mode": mode_name,
                "cache_file": path,
                "state": if t.is_usable() { "logged_in" } else if t.api_base_url().is_none() { "incomplete" } else { "expired" },
                "api_base_url": t.api_base_url(),
                "expiration": t.expiration(),
                "expires": t.describe_expiry(),
                "token": t.masked_token(),
                "client_id": t.client_id(),
            }),
            Ok(None) => {
                serde_json::json!({"mode": mode_name, "cache_file": path, "state": "logged_out"})
            }
            Err(e) => {
                serde_json::json!({"mode": mode_name, "cache_file": path, "state": "unusable", "problem": message(e)})
            }
        };
        entries.push(entry);
    }
    if json {
        println!("{}", serde_json::Value::Array(entries));
        return Ok(());
    }
    for e in entries {
        let text = |k: &str| e[k].as_str().unwrap_or("").to_string();
        println!("{:<5} {}", text("mode"), text("cache_file"));
        match text("state").as_str() {
            "logged_out" => println!("      not logged in"),
            "unusable" => println!("      unusable: {}", text("problem")),
            state => {
                println!(
                    "      API base URL  {}",
                    e["api_base_url"].as_str().unwrap_or("(none)")
                );
                println!(
                    "      token         {} ({})",
                    text("token"),
                    text("expires")
                );
                if let Some(id) = e["client_id"].as_str() {
                    println!("      client id     {id}");
                }
                if state != "logged_in" {
                    println!("      a login is needed: run `carto-auth login`");
                }
            }
        }
    }
    Ok(())
}
