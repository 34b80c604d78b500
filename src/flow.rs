//! The interactive login engine: choose a flow (device code, local
//! callback, paste), start it, and finish it with a token. The one-liner
//! and the notebook's two-step API both drive this; neither knows how the
//! other waits.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use crate::callback::{CallbackConfig, CallbackResult, CallbackServer};
use crate::clock::now_unix;
use crate::config::OAuthConfig;
use crate::device::{Deadlines, DeviceAuthorization, poll_once, poll_until, request_device_code};
use crate::environment::no_local_browser;
use crate::error::{Error, Result};
use crate::instructions::{Flow, LoginInstructions};
use crate::oauth::{Pkce, authorize_url, exchange_code, random_urlsafe};
use crate::paste::parse_pasted;
use crate::prompt::{ASK_CODE, Claimed, ask};
use crate::secret::{AuthorizationCode, CodeVerifier};
use crate::token::Token;

/// Pastes the one-line login accepts before it gives up.
pub(crate) const PASTE_ATTEMPTS: usize = 3;
/// Code exchanges after a network failure, in the local flow (the code
/// came straight from the browser, so only the network can be at fault).
const EXCHANGE_ATTEMPTS: usize = 3;
const EXCHANGE_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Where a login stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the user; a failed paste or exchange leaves it here.
    Pending,
    /// Over: `"completed"`, `"cancelled"`, `"timed out"`, `"refused"`.
    Finished(&'static str),
}

/// A login that has begun.
pub(crate) struct Login {
    pub(crate) config: Arc<OAuthConfig>,
    pub(crate) flow: Flow,
    /// The authorize URL, or the device flow's verification link.
    pub(crate) address: String,
    /// The redirect URI the authorize URL carries; the exchange repeats it.
    redirect_uri: String,
    pub(crate) browser_opened: bool,
    pub(crate) why_paste: Option<String>,
    /// The PKCE verifier: kept until a code exchange succeeds, so a slip of
    /// the paste or a network error never costs a sign-in.
    verifier: Option<CodeVerifier>,
    /// One exchange or poll at a time.
    state: tokio::sync::Mutex<State>,
    callback: Option<CallbackServer>,
    device: Option<Device>,
}

struct Device {
    authorization: DeviceAuthorization,
    expires_at: i64,
}

impl Login {
    /// Chooses and starts the flow. With `device_flow`, asks for a device
    /// code first and falls back, saying why in one line, when CARTO refuses.
    /// Then the local flow where a browser on this machine can take part, the
    /// paste flow otherwise, or when the port is taken or no browser opens.
    pub(crate) async fn start(config: Arc<OAuthConfig>) -> Result<Login> {
        let why_not_local = match config.open_browser {
            Some(true) => None,
            Some(false) => Some("open_browser(false)".to_string()),
            None => no_local_browser(|name| std::env::var(name).ok(), cfg!(target_os = "linux")),
        };
        if config.device_flow {
            let http = config.common.http()?;
            match request_device_code(&http, &config.common.endpoints, config.org.as_deref()).await
            {
                Ok(authorization) => return Ok(Self::device(config, authorization)),
                Err(why) => {
                    let instead = if why_not_local.is_none() {
                        "the browser"
                    } else {
                        "a code to paste"
                    };
                    config
                        .common
                        .prompt
                        .notice(&format!("{why}; continuing with {instead} instead."));
                }
            }
        }
        let pkce = Pkce::generate()?;
        let Some(why_paste) = why_not_local else {
            return Ok(match config.common.endpoints.local_callback() {
                Some((port, path)) => Self::local(config, pkce, port, path)?,
                None => {
                    let why = format!(
                        "the redirect URI {} is not on this machine",
                        config.common.endpoints.redirect_uri
                    );
                    Self::paste(config, pkce, Some(why))
                }
            });
        };
        Ok(Self::paste(config, pkce, Some(why_paste)))
    }

    fn local(config: Arc<OAuthConfig>, pkce: Pkce, port: u16, path: String) -> Result<Login> {
        let endpoints = &config.common.endpoints;
        let state = random_urlsafe(24)?;
        let url = authorize_url(
            endpoints,
            &endpoints.redirect_uri,
            &pkce.challenge,
            Some(&state),
            config.org.as_deref(),
            config.force_login,
        );
        let server = CallbackServer::start(CallbackConfig {
            port,
            path,
            state,
            issuer: endpoints.issuer.clone(),
            success_page: endpoints.success_page.clone(),
            error_page: endpoints.error_page.clone(),
            timeout: config.login_timeout,
        });
        let fall_back = |reason: String, pkce: Pkce| {
            config.common.prompt.notice(&format!(
                "{reason}; continuing with a code to paste instead."
            ));
            Self::paste(config.clone(), pkce, Some(reason))
        };
        let server = match server {
            Ok(server) => server,
            Err(e) => {
                return Ok(fall_back(
                    format!("the login callback port {port} cannot be used: {e}"),
                    pkce,
                ));
            }
        };
        if let Err(e) = webbrowser::open(&url) {
            drop(server);
            return Ok(fall_back(format!("no browser could be opened ({e})"), pkce));
        }
        log::info!(
            "opened the authorize URL in a browser; waiting on port {}",
            server.port()
        );
        let redirect_uri = config.common.endpoints.redirect_uri.clone();
        Ok(Login {
            config,
            flow: Flow::LocalCallback,
            address: url,
            redirect_uri,
            browser_opened: true,
            why_paste: None,
            verifier: Some(pkce.verifier),
            state: tokio::sync::Mutex::new(State::Pending),
            callback: Some(server),
            device: None,
        })
    }

    fn paste(config: Arc<OAuthConfig>, pkce: Pkce, why_paste: Option<String>) -> Login {
        let redirect_uri = config.common.endpoints.paste_redirect_uri.clone();
        // No `state`, as the Python package: CARTO's page shows the code only.
        let url = authorize_url(
            &config.common.endpoints,
            &redirect_uri,
            &pkce.challenge,
            None,
            config.org.as_deref(),
            config.force_login,
        );
        Login {
            config,
            flow: Flow::Paste,
            address: url,
            redirect_uri,
            browser_opened: false,
            why_paste,
            verifier: Some(pkce.verifier),
            state: tokio::sync::Mutex::new(State::Pending),
            callback: None,
            device: None,
        }
    }

    fn device(config: Arc<OAuthConfig>, authorization: DeviceAuthorization) -> Login {
        let lifetime = i64::try_from(authorization.expires_in.as_secs()).unwrap_or(i64::MAX);
        let expires_at = now_unix().saturating_add(lifetime);
        Login {
            config,
            flow: Flow::DeviceCode,
            address: authorization.link().to_string(),
            redirect_uri: String::new(),
            browser_opened: false,
            why_paste: None,
            verifier: None,
            state: tokio::sync::Mutex::new(State::Pending),
            callback: None,
            device: Some(Device {
                authorization,
                expires_at,
            }),
        }
    }

    /// What a prompt or a card needs to show this login.
    pub(crate) fn instructions(&self) -> LoginInstructions {
        let device = self.device.as_ref();
        LoginInstructions {
            authorize_url: self.address.clone(),
            flow: self.flow,
            browser_opened: self.browser_opened,
            org: self.config.org.clone(),
            why_paste: self.why_paste.clone(),
            user_code: device.map(|d| d.authorization.user_code.clone()),
            verification_uri: device
                .filter(|d| d.authorization.verification_uri_complete.is_some())
                .map(|d| d.authorization.verification_uri.clone()),
            expires_at: device.map(|d| d.expires_at),
        }
    }

    /// Whether the login is still waiting for the user.
    pub(crate) fn is_pending(&self) -> bool {
        self.state
            .try_lock()
            .map_or(true, |state| *state == State::Pending)
    }

    /// Where it stands, for `Debug`.
    pub(crate) fn describe_state(&self) -> &'static str {
        match self.state.try_lock().map(|s| *s) {
            Ok(State::Pending) => "pending",
            Ok(State::Finished(s)) => s,
            Err(_) => "busy",
        }
    }

    /// Finishes the login with what the user pasted. A refused or failed
    /// exchange leaves the login pending: it can be completed again.
    pub(crate) async fn complete(&self, pasted: &str) -> Result<Token> {
        let mut state = self.state.lock().await;
        check_pending(*state)?;
        let Some(verifier) = &self.verifier else {
            return Err(Error::NoCode {
                what: "this login finishes by itself once the code is approved: call wait()",
            });
        };
        let code = parse_pasted(pasted, &self.config.common.endpoints.issuer)?;
        let token = self.exchange(&code, verifier).await?;
        *state = State::Finished("completed");
        drop(state);
        self.stop_callback();
        Ok(token)
    }

    /// Waits for the browser to come back (local flow) or the code to be
    /// approved (device flow), then finishes.
    pub(crate) async fn wait(&self) -> Result<Token> {
        match (self.flow, &self.callback, &self.device) {
            (Flow::LocalCallback, Some(callback), _) => self.wait_callback(callback).await,
            (Flow::DeviceCode, _, Some(device)) => self.wait_device(device).await,
            _ => {
                check_pending(*self.state.lock().await)?;
                Err(Error::NoCode {
                    what: "this login has no local callback to wait for; pass the pasted address to complete()",
                })
            }
        }
    }

    async fn wait_callback(&self, callback: &CallbackServer) -> Result<Token> {
        check_pending(*self.state.lock().await)?;
        let Some(result) = callback.take_result() else {
            return Err(Error::NoCode {
                what: "the browser already came back to this login; paste the address it showed into complete()",
            });
        };
        let outcome = result.await.unwrap_or(CallbackResult::Stopped);
        let mut state = self.state.lock().await;
        match outcome {
            CallbackResult::Code(code) => {
                check_pending(*state)?;
                let verifier = self
                    .verifier
                    .as_ref()
                    .ok_or(Error::LoginFinished { state: "cancelled" })?;
                let mut attempt = 1;
                let token = loop {
                    match self.exchange(&code, verifier).await {
                        Err(Error::Network { .. }) if attempt < EXCHANGE_ATTEMPTS => {
                            attempt += 1;
                            tokio::time::sleep(EXCHANGE_RETRY_PAUSE).await;
                        }
                        other => break other?,
                    }
                };
                *state = State::Finished("completed");
                Ok(token)
            }
            CallbackResult::Denied { error, description } => {
                Err(Error::Authorization { error, description })
            }
            CallbackResult::WrongIssuer(got) => Err(Error::IssuerMismatch {
                expected: self.config.common.endpoints.issuer.clone(),
                got,
            }),
            CallbackResult::TimedOut => {
                *state = State::Finished("timed out");
                Err(Error::LoginTimeout {
                    redirect_uri: self.redirect_uri.clone(),
                    waited: self.config.login_timeout,
                })
            }
            CallbackResult::Stopped => {
                if *state == State::Pending {
                    *state = State::Finished("cancelled");
                }
                Err(Error::LoginFinished {
                    state: match *state {
                        State::Finished(s) => s,
                        State::Pending => "cancelled",
                    },
                })
            }
        }
    }

    async fn wait_device(&self, device: &Device) -> Result<Token> {
        let mut state = self.state.lock().await;
        check_pending(*state)?;
        let left = u64::try_from(device.expires_at.saturating_sub(now_unix())).unwrap_or(0);
        let deadlines = Deadlines {
            code_expires_in: Duration::from_secs(left),
            login_timeout: self.config.login_timeout,
        };
        let http = self.config.common.http()?;
        let endpoints = &self.config.common.endpoints;
        let code = &device.authorization.device_code;
        let result = poll_until(device.authorization.interval, deadlines, || {
            poll_once(&http, endpoints, code)
        })
        .await;
        *state = State::Finished(match &result {
            Ok(_) => "completed",
            Err(Error::Authorization { .. }) => "refused",
            Err(_) => "timed out",
        });
        result
    }

    /// The one-line login: shows the instructions, then waits for the
    /// callback or the approval, or asks for the pasted answer, up to
    /// [`PASTE_ATTEMPTS`] times, each refusal explained in one line.
    pub(crate) async fn run(&self) -> Result<Token> {
        let prompt = self.config.common.prompt.clone();
        // Before the address is shown: an answer typed once it is on the
        // screen is this login's, even if it comes before the question.
        let mut claimed = (self.flow == Flow::Paste).then(Claimed::now);
        prompt.show_login(&self.instructions());
        if self.flow != Flow::Paste {
            return self.wait().await;
        }
        let mut last = None;
        for attempt in 1..=PASTE_ATTEMPTS {
            let claim = claimed.take().unwrap_or_else(Claimed::now);
            let answer = match ask(&prompt, ASK_CODE, claim).await {
                Ok(answer) => answer,
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    self.cancel();
                    // Input that ends after a refused paste: the refusal
                    // is what the user must fix.
                    return Err(last.unwrap_or(Error::NoInput {
                        reason: None,
                        hint: prompt.no_input_hint(),
                    }));
                }
                Err(e) => return Err(Error::Input(e)),
            };
            let again = |why: &str| {
                if attempt < PASTE_ATTEMPTS {
                    prompt.notice(&format!(
                        "{why} Paste again (attempt {} of {PASTE_ATTEMPTS}).",
                        attempt + 1
                    ));
                }
            };
            if answer.trim().is_empty() {
                again("Nothing was pasted.");
                continue;
            }
            match self.complete(&answer).await {
                Ok(token) => return Ok(token),
                Err(e) if e.can_retry_login() => {
                    again(&format!("That did not work: {e}."));
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        self.cancel();
        // Only empty answers: from a person, or from a front end that sends
        // none but too slowly to tell (a loaded kernel). The prompt's hint
        // names what works without typing.
        Err(last.unwrap_or(Error::NoAnswer {
            hint: prompt.no_input_hint(),
        }))
    }

    /// Ends the login: later calls get [`Error::LoginFinished`], and the
    /// callback port is free when this returns.
    pub(crate) fn cancel(&self) {
        if let Ok(mut state) = self.state.try_lock()
            && *state == State::Pending
        {
            *state = State::Finished("cancelled");
        }
        self.stop_callback();
    }

    fn stop_callback(&self) {
        if let Some(callback) = &self.callback {
            callback.stop();
        }
    }

    async fn exchange(&self, code: &AuthorizationCode, verifier: &CodeVerifier) -> Result<Token> {
        let common = &self.config.common;
        exchange_code(
            &common.http()?,
            &common.endpoints,
            code,
            &self.redirect_uri,
            verifier,
        )
        .await
    }
}

fn check_pending(state: State) -> Result<()> {
    match state {
        State::Pending => Ok(()),
        State::Finished(state) => Err(Error::LoginFinished { state }),
    }
}
