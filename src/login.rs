//! The interactive login as a value: begun, then completed by the local
//! callback, a pasted answer or a device-code approval. The one-liner
//! `login()` runs the same engine (`flow.rs`).

use std::sync::Arc;

use crate::api::discover;
use crate::auth::CartoAuth;
use crate::background::run;
use crate::config::OAuthConfig;
use crate::error::Result;
use crate::flow::Login;
use crate::instructions::{Flow, LoginInstructions};
use crate::mode::TokenSource;
use crate::provider::OAuthProvider;
use crate::token::Token;

/// A login that has begun and waits for the user.
///
/// Made by [`OAuthBuilder::begin`](crate::OAuthBuilder::begin). It holds the
/// PKCE verifier and `state` (never shown). Finish it with
/// [`complete`](Self::complete) (a pasted address or code, either
/// redirect flow) or [`wait`](Self::wait) (the local callback, or the device
/// flow's approval).
///
/// A refused or failed attempt (a code copied short, a network error) leaves
/// it pending: call `complete` again with the right answer. Once it has
/// succeeded, timed out or been cancelled, any call is an
/// [`Error::LoginFinished`](crate::Error::LoginFinished). Its callback port
/// is closed as soon as the login ends in any way, dropping it included.
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
    login: Arc<Login>,
}

impl PendingLogin {
    pub(crate) fn start(config: Arc<OAuthConfig>) -> Result<PendingLogin> {
        Ok(PendingLogin {
            login: Arc::new(Login::start(config)?),
        })
    }

    /// The address to open to sign in (in the device flow, the page where
    /// the code is approved).
    pub fn authorize_url(&self) -> &str {
        &self.login.address
    }

    /// How the login completes.
    pub fn flow(&self) -> Flow {
        self.login.flow()
    }

    /// The code to approve, in the device flow.
    pub fn user_code(&self) -> Option<String> {
        self.login.instructions().user_code
    }

    /// The SSO organization, if one was set.
    pub fn org(&self) -> Option<&str> {
        self.login.config.org.as_deref()
    }

    /// Whether a browser was opened on this machine.
    pub fn browser_opened(&self) -> bool {
        self.login.browser_opened
    }

    /// Why the paste flow is used, when it is.
    pub fn why_paste(&self) -> Option<&str> {
        self.login.why_paste.as_deref()
    }

    /// Whether it still waits for the user (not completed, timed out or
    /// cancelled).
    pub fn is_pending(&self) -> bool {
        self.login.is_pending()
    }

    /// What a [`Prompt`](crate::Prompt) needs to show this login.
    pub fn instructions(&self) -> LoginInstructions {
        self.login.instructions()
    }

    /// Finishes the login with what the user pasted: the whole address of
    /// the page CARTO showed after sign-in, or the code on it. In the local
    /// flow this also takes the address of a callback page that could not
    /// load (a browser on another machine).
    ///
    /// # Errors
    /// [`Error::NoCode`](crate::Error::NoCode),
    /// [`Error::Authorization`](crate::Error::Authorization) or a refused
    /// exchange (the login stays pending: call again with the right
    /// answer); [`Error::LoginFinished`](crate::Error::LoginFinished) once
    /// it is over.
    pub fn complete(&self, pasted: &str) -> Result<CartoAuth> {
        let token = self.login.complete(pasted)?;
        Ok(signed_in(self.login.config.clone(), token))
    }

    /// [`complete`](Self::complete) for async programs, on any executor.
    pub async fn complete_async(&self, pasted: &str) -> Result<CartoAuth> {
        let (login, pasted) = (self.clone_inner(), pasted.to_string());
        run(move || login.complete(&pasted)).await
    }

    /// Waits for the browser to come back to the local callback server, or
    /// for the device code to be approved (up to the login timeout, 5
    /// minutes unless set), then finishes the login.
    ///
    /// # Errors
    /// [`Error::LoginTimeout`](crate::Error::LoginTimeout),
    /// [`Error::DeviceCodeExpired`](crate::Error::DeviceCodeExpired),
    /// [`Error::DeviceLoginTimeout`](crate::Error::DeviceLoginTimeout),
    /// [`Error::Authorization`](crate::Error::Authorization) when CARTO sent
    /// an error, [`Error::NoCode`](crate::Error::NoCode) in the paste flow
    /// (use [`complete`](Self::complete) there), token-endpoint errors,
    /// [`Error::LoginFinished`](crate::Error::LoginFinished).
    pub fn wait(&self) -> Result<CartoAuth> {
        let token = self.login.wait()?;
        Ok(signed_in(self.login.config.clone(), token))
    }

    /// [`wait`](Self::wait) for async programs, on any executor. Dropping
    /// the future cancels the login: its port is free within a second.
    pub async fn wait_async(&self) -> Result<CartoAuth> {
        let login = self.clone_inner();
        run(move || login.wait()).await
    }

    /// Ends the login now, from any thread: a [`wait`](Self::wait) in
    /// progress returns within a second with
    /// [`Error::LoginFinished`](crate::Error::LoginFinished) and no token,
    /// its callback port is free when this returns, and later calls get
    /// the same error.
    pub fn cancel(&self) {
        self.login.cancel();
    }

    /// Another handle on the same login, for a thread.
    fn clone_inner(&self) -> PendingLogin {
        PendingLogin {
            login: self.login.clone(),
        }
    }
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("flow", &self.login.flow())
            .field("authorize_url", &self.login.address)
            .field("org", &self.login.config.org)
            .field("state", &self.login.describe_state())
            .finish_non_exhaustive()
    }
}

/// The end of every interactive login: discover the API base URL unless
/// given (retrying once; a failure keeps the token and leaves the URL
/// unknown), cache, confirm.
pub(crate) fn signed_in(config: Arc<OAuthConfig>, token: Token) -> CartoAuth {
    let common = &config.common;
    let (api_base_url, discovery_error) = match &config.api_base_url {
        Some(url) => (Some(url.clone()), None),
        None => discover(&common.http(), &common.endpoints, &token.access_token),
    };
    config.save_token(api_base_url.clone(), &token);
    let prompt = common.prompt.clone();
    let auth = CartoAuth::new(
        Box::new(OAuthProvider { config }),
        api_base_url,
        discovery_error.clone(),
        token,
        TokenSource::SignIn,
    );
    prompt.notice(&format!("Signed in to CARTO. {}", auth.summary()));
    if let Some(why) = discovery_error {
        crate::prompt::warn(
            &*prompt,
            None,
            &format!(
                "the API base URL could not be found after signing in ({why}); the token is \
                 kept. Pass the URL with .api_base_url(..) or CARTO_API_BASE_URL (CARTO \
                 Workspace > Developers shows it)"
            ),
        );
    }
    auth
}
