//! The interactive login as a value: begun, then completed by the local
//! callback or by a pasted answer. The one-liner `login()` and the notebook's
//! two-step API are the same code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::auth::{CartoAuth, OAuthConfig};
use crate::callback::{CallbackResult, CallbackServer};
use crate::error::{Error, Result};
use crate::oauth::{Pkce, authorize_url, exchange_code, parse_pasted, random_urlsafe};
use crate::prompt::{ASK_CODE, Flow, LoginInstructions, no_local_browser};
use crate::runtime::block_on;
use crate::secret::{AuthorizationCode, CodeVerifier};

/// A login that has begun and waits for the user.
///
/// Made by [`OAuthBuilder::begin`](crate::OAuthBuilder::begin). It holds the
/// PKCE verifier and `state` (never shown). Finish it with
/// [`complete`](Self::complete) (a pasted address or code, either flow) or
/// [`wait`](Self::wait) (the local callback). It can be finished once; any
/// later call is an [`Error::LoginFinished`]. Dropping it stops the callback
/// server.
///
/// ```no_run
/// use carto_auth::CartoAuth;
/// let login = CartoAuth::oauth().open_browser(false).begin()?;
/// println!("Open {}", login.authorize_url());
/// let answer = "https://app.carto.com/auth/token?code=...";
/// let auth = login.complete(answer)?;
/// # Ok::<(), carto_auth::Error>(())
/// ```
pub struct PendingLogin {
    config: Arc<OAuthConfig>,
    authorize_url: String,
    redirect_uri: String,
    flow: Flow,
    browser_opened: bool,
    why_paste: Option<String>,
    verifier: Mutex<Verifier>,
    callback: Option<Callback>,
}

enum Verifier {
    Unused(CodeVerifier),
    Finished(&'static str),
}

struct Callback {
    server: Arc<CallbackServer>,
    result: Mutex<Option<oneshot::Receiver<CallbackResult>>>,
    timeout: Duration,
}

impl PendingLogin {
    /// Chooses the flow, prepares PKCE, starts the callback server and opens
    /// the browser when a local browser can take part; otherwise prepares
    /// the paste flow. Falls back to the paste flow, and says why, when the
    /// port is taken or no browser opens.
    pub(crate) fn start(config: Arc<OAuthConfig>) -> Result<PendingLogin> {
        let pkce = Pkce::generate()?;
        let endpoints = &config.common.endpoints;
        let mut why_paste = if config.open_browser {
            no_local_browser(|name| std::env::var(name).ok(), cfg!(target_os = "linux"))
        } else {
            Some("open_browser(false)".into())
        };
        if why_paste.is_none() {
            match endpoints.local_callback() {
                None => {
                    why_paste = Some(format!(
                        "the redirect URI {} is not on this machine",
                        endpoints.redirect_uri
                    ))
                }
                Some((port, path)) => match Self::start_local(&config, pkce, port, &path) {
                    Ok(login) => return Ok(login),
                    Err((reason, pkce)) => {
                        config.prompt.notice(&format!(
                            "{reason}; continuing with a code to paste instead."
                        ));
                        return Ok(Self::paste(config.clone(), pkce, Some(reason)));
                    }
                },
            }
        }
        Ok(Self::paste(config, pkce, why_paste))
    }

    fn start_local(
        config: &Arc<OAuthConfig>,
        pkce: Pkce,
        port: u16,
        path: &str,
    ) -> std::result::Result<PendingLogin, (String, Pkce)> {
        let endpoints = &config.common.endpoints;
        let server = match CallbackServer::bind(port, path) {
            Ok(server) => server,
            Err(e) => {
                return Err((
                    format!("the login callback port {port} cannot be used ({e})"),
                    pkce,
                ));
            }
        };
        let state = match random_urlsafe(24) {
            Ok(s) => s,
            Err(e) => return Err((e.to_string(), pkce)),
        };
        let redirect_uri = endpoints.redirect_uri.clone();
        let url = authorize_url(
            endpoints,
            &redirect_uri,
            &pkce.challenge,
            Some(&state),
            config.org.as_deref(),
        );

        // The server must be listening before the browser can come back.
        let (tx, rx) = oneshot::channel();
        let (srv, timeout) = (server.clone(), config.login_timeout);
        let (success, error) = (endpoints.success_page.clone(), endpoints.error_page.clone());
        let spawned = std::thread::Builder::new()
            .name("carto-auth-callback".into())
            .spawn(move || {
                // No printing here: evcxr forwards a background thread's output
                // only while some cell runs.
                let _ = tx.send(srv.serve(&state, timeout, &success, &error));
            });
        if let Err(e) = spawned {
            return Err((
                format!("the login callback server could not start ({e})"),
                pkce,
            ));
        }
        if let Err(e) = webbrowser::open(&url) {
            server.stop();
            return Err((format!("no browser could be opened ({e})"), pkce));
        }
        log::info!("opened the authorize URL in a browser");
        Ok(PendingLogin {
            config: config.clone(),
            authorize_url: url,
            redirect_uri,
            flow: Flow::LocalCallback,
            browser_opened: true,
            why_paste: None,
            verifier: Mutex::new(Verifier::Unused(pkce.verifier)),
            callback: Some(Callback {
                server,
                result: Mutex::new(Some(rx)),
                timeout,
            }),
        })
    }

    fn paste(config: Arc<OAuthConfig>, pkce: Pkce, why_paste: Option<String>) -> PendingLogin {
        let redirect_uri = config.common.endpoints.paste_redirect_uri.clone();
        // No `state`, as the Python package: CARTO's page shows the code only.
        let url = authorize_url(
            &config.common.endpoints,
            &redirect_uri,
            &pkce.challenge,
            None,
            config.org.as_deref(),
        );
        PendingLogin {
            config,
            authorize_url: url,
            redirect_uri,
            flow: Flow::Paste,
            browser_opened: false,
            why_paste,
            verifier: Mutex::new(Verifier::Unused(pkce.verifier)),
            callback: None,
        }
    }

    /// The address to open to sign in.
    pub fn authorize_url(&self) -> &str {
        &self.authorize_url
    }

    /// How the code comes back.
    pub fn flow(&self) -> Flow {
        self.flow
    }

    /// The SSO organization, if one was set.
    pub fn org(&self) -> Option<&str> {
        self.config.org.as_deref()
    }

    /// Whether a browser was opened on this machine.
    pub fn browser_opened(&self) -> bool {
        self.browser_opened
    }

    /// Why the paste flow is used, when it is.
    pub fn why_paste(&self) -> Option<&str> {
        self.why_paste.as_deref()
    }

    /// What a [`Prompt`](crate::Prompt) needs to show this login.
    pub fn instructions(&self) -> LoginInstructions {
        LoginInstructions {
            authorize_url: self.authorize_url.clone(),
            flow: self.flow,
            browser_opened: self.browser_opened,
            org: self.config.org.clone(),
            why_paste: self.why_paste.clone(),
        }
    }

    /// Finishes the login with what the user pasted: the whole address of
    /// the page CARTO showed after sign-in, or the code on it. In the local
    /// flow this also takes the address of a callback page that could not
    /// load (a browser on another machine).
    ///
    /// # Errors
    /// [`Error::NoCode`] or [`Error::Authorization`] for the pasted text (the
    /// login can still be completed with a corrected paste); token-endpoint
    /// and discovery errors; [`Error::LoginFinished`] when called again.
    pub fn complete(&self, pasted: &str) -> Result<CartoAuth> {
        block_on(self.complete_async(pasted))?
    }

    /// [`complete`](Self::complete) for async programs.
    pub async fn complete_async(&self, pasted: &str) -> Result<CartoAuth> {
        self.check_unused()?;
        let code = parse_pasted(pasted)?;
        self.finish(code).await
    }

    /// Waits for the browser to come back to the local callback server (up
    /// to the login timeout, 5 minutes unless set), then finishes the login.
    ///
    /// # Errors
    /// [`Error::LoginTimeout`], [`Error::Authorization`] when CARTO sent an
    /// error, [`Error::NoCode`] in the paste flow (use
    /// [`complete`](Self::complete) there), token-endpoint and discovery
    /// errors, [`Error::LoginFinished`] when called again.
    pub fn wait(&self) -> Result<CartoAuth> {
        block_on(self.wait_async())?
    }

    /// [`wait`](Self::wait) for async programs.
    pub async fn wait_async(&self) -> Result<CartoAuth> {
        self.check_unused()?;
        let Some(callback) = &self.callback else {
            return Err(Error::NoCode {
                what: "this login has no local callback to wait for; pass the pasted address to complete()",
            });
        };
        let receiver = lock(&callback.result).take();
        let Some(receiver) = receiver else {
            return Err(Error::LoginFinished {
                state: "waited for",
            });
        };
        let outcome = receiver.await.unwrap_or(CallbackResult::Stopped);
        match outcome {
            CallbackResult::Code(code) => self.finish(code).await,
            CallbackResult::Denied { error, description } => {
                self.mark("failed");
                Err(Error::Authorization { error, description })
            }
            CallbackResult::TimedOut => {
                self.mark("cancelled");
                Err(Error::LoginTimeout {
                    redirect_uri: self.redirect_uri.clone(),
                    waited: callback.timeout,
                })
            }
            CallbackResult::Stopped => {
                self.mark("cancelled");
                Err(Error::LoginFinished { state: "cancelled" })
            }
        }
    }

    /// The blocking one-liner: shows the instructions, then waits for the
    /// callback or asks for the pasted answer.
    pub(crate) async fn run(self) -> Result<CartoAuth> {
        let prompt = self.config.prompt.clone();
        prompt.show_login(&self.instructions());
        if self.flow == Flow::LocalCallback {
            return self.wait_async().await;
        }
        let asker = prompt.clone();
        let answer = tokio::task::spawn_blocking(move || asker.ask_code(ASK_CODE))
            .await
            .map_err(|e| Error::Input(std::io::Error::other(e.to_string())))?
            .map_err(Error::Input)?;
        if answer.trim().is_empty() {
            self.mark("cancelled");
            return Err(Error::NoAnswer {
                hint: prompt.no_answer_hint(),
            });
        }
        self.complete_async(&answer).await
    }

    fn check_unused(&self) -> Result<()> {
        match &*lock(&self.verifier) {
            Verifier::Unused(_) => Ok(()),
            Verifier::Finished(state) => Err(Error::LoginFinished { state }),
        }
    }

    fn mark(&self, state: &'static str) {
        *lock(&self.verifier) = Verifier::Finished(state);
        if let Some(callback) = &self.callback {
            callback.server.stop();
        }
    }

    async fn finish(&self, code: AuthorizationCode) -> Result<CartoAuth> {
        // Taken out before the exchange: a code is single-use, so whatever
        // the token endpoint says, this login is over.
        let verifier =
            match std::mem::replace(&mut *lock(&self.verifier), Verifier::Finished("failed")) {
                Verifier::Unused(v) => v,
                Verifier::Finished(state) => {
                    *lock(&self.verifier) = Verifier::Finished(state);
                    return Err(Error::LoginFinished { state });
                }
            };
        if let Some(callback) = &self.callback {
            callback.server.stop();
        }
        let config = &self.config;
        let http = config.common.http()?;
        let token = exchange_code(
            &http,
            &config.common.endpoints,
            &code,
            &self.redirect_uri,
            &verifier,
        )
        .await?;
        let auth = CartoAuth::after_login(config.clone(), token, http).await?;
        *lock(&self.verifier) = Verifier::Finished("completed");
        Ok(auth)
    }
}

impl Drop for PendingLogin {
    fn drop(&mut self) {
        if let Some(callback) = &self.callback {
            callback.server.stop();
        }
    }
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &*lock(&self.verifier) {
            Verifier::Unused(_) => "pending",
            Verifier::Finished(s) => s,
        };
        f.debug_struct("PendingLogin")
            .field("flow", &self.flow)
            .field("authorize_url", &self.authorize_url)
            .field("org", &self.config.org)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

/// A poisoned lock only means another thread panicked while holding it; the
/// data (a verifier or a receiver) is still sound.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
