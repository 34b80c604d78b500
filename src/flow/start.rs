//! Choosing the flow and starting it: the device code when asked for and
//! granted, the local callback where a browser on this machine can take
//! part, the paste flow otherwise.

use std::sync::Arc;

use crate::callback::{CallbackConfig, CallbackServer};
use crate::clock::now_unix;
use crate::config::OAuthConfig;
use crate::device::{DeviceAuthorization, request_device_code};
use crate::environment::no_local_browser;
use crate::error::Result;
use crate::oauth::{Pkce, authorize_url, random_urlsafe};

use super::{Login, Redirect, Way};

impl Login {
    /// Chooses and starts the flow. With `device_flow`, asks for a device
    /// code first and falls back, saying why in one line, when CARTO refuses.
    /// Then the local flow where a browser on this machine can take part, the
    /// paste flow otherwise, or when the port is taken or no browser opens.
    pub(crate) fn start(config: Arc<OAuthConfig>) -> Result<Login> {
        let why_not_local = match config.open_browser {
            Some(true) => None,
            Some(false) => Some("open_browser(false)".to_string()),
            None => no_local_browser(|name| std::env::var(name).ok(), cfg!(target_os = "linux")),
        };
        if config.device_flow {
            let http = config.common.http();
            match request_device_code(&http, &config.common.endpoints, config.org.as_deref()) {
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
        let redirect = Redirect {
            redirect_uri: config.common.endpoints.redirect_uri.clone(),
            verifier: pkce.verifier,
        };
        let way = Way::Local {
            redirect,
            callback: server,
        };
        Ok(Self::new(config, url, way, true, None))
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
        let redirect = Redirect {
            redirect_uri,
            verifier: pkce.verifier,
        };
        Self::new(config, url, Way::Paste { redirect }, false, why_paste)
    }

    fn device(config: Arc<OAuthConfig>, authorization: DeviceAuthorization) -> Login {
        let lifetime = i64::try_from(authorization.expires_in.as_secs()).unwrap_or(i64::MAX);
        let expires_at = now_unix().saturating_add(lifetime);
        let address = authorization.link().to_string();
        let way = Way::Device {
            authorization,
            expires_at,
        };
        Self::new(config, address, way, false, None)
    }
}
