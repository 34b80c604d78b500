//! `notebooks/remote_kernel.ipynb` in JupyterLab itself: a real JupyterLab 4
//! server on loopback with the evcxr kernel, driven by headless Chromium
//! through playwright-core (`tests/jupyterlab/driver.mjs`) the way a person
//! uses it, against the fake CARTO. Cell by cell: the one-line login
//! answered through JupyterLab's input box, with its streamed QR code read
//! by zbar from a screenshot in the light and the dark theme (what a phone
//! sees); the device code; the login card and the session cards, readable
//! in both themes; a map typed into a new cell at the end, drawn from the
//! fake Maps API (`tests/support/maps_api.rs`) with the scripts served
//! locally, read from a screenshot of JupyterLab's page in both themes
//! (the layer's colour at the places, the theme's background elsewhere);
//! the notebook saved (no session token in it, the map's scoped one is),
//! then reopened untrusted, where the card's QR code must still be there
//! and still scan. The JupyterLab plumbing is `tests/support/jupyterlab.rs`.
//!
//! Nothing is skipped: without JupyterLab, playwright-core, Chromium, zbar,
//! evcxr or the map's npm packages this fails (`scripts/test` installs
//! them). Screenshots are kept in the target directory
//! (`target/tmp/jupyterlab/`; their paths are printed).

mod support;

use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};
use support::FakeCarto;
use support::jupyterlab::{
    Browser, CELL_TIMEOUT, DARK, DEP_TIMEOUT, LIGHT, Lab, START_TIMEOUT, Session, manifest_dir,
};
use support::map_site::{MapSite, Sample, assert_colors};
use support::maps_api::{self, FakeMaps};

/// The notebook, as shipped; its `:dep` line points at this checkout.
const NOTEBOOK: &str = "remote_kernel";
/// WCAG AA for body text.
const MIN_CONTRAST: f64 = 4.5;
/// The map's layer.
const MAP_RED: [u8; 3] = [230, 20, 20];
/// What shows behind a cell's output in each theme (`--jp-layout-color0`).
const THEMES: [(&str, &str, [u8; 3]); 2] = [
    (LIGHT, "light", [255, 255, 255]),
    (DARK, "dark", [17, 17, 17]),
];

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

/// A map drawn in a cell added at the end of the notebook, as in `map.ipynb`: with the
/// logged-in session's token and the fake Maps API as its API base URL
/// (`CARTO_AUTH_TEST_MAPS_API`, the test's own variable:
/// `CARTO_API_BASE_URL` would change the logins), the scripts from
/// `CARTO_AUTH_JS_URL`, and no basemap (its tiles are on the internet).
fn map_cell() -> String {
    format!(
        "let maps = CartoAuth::from_token(\n    auth.get_access_token()?,\n    \
         std::env::var(\"CARTO_AUTH_TEST_MAPS_API\")?,\n);\n\
         maps.map()\n    .basemap(carto_auth::Basemap::None)\n    .layer(\n        \
         carto_auth::Layer::vector_query({:?}, {:?})\n            \
         .query_parameters(carto_auth::json!({{\"skip\": \"none\"}}))\n            \
         .fill_color({MAP_RED:?})\n            .line_width(0.0)\n            \
         .point_radius(9.0)\n            .tooltip([\"name\", \"kind\"]),\n    )",
        maps_api::CONNECTION,
        maps_api::PLACES_SQL
    )
}

/// Where the map's layer is (the places of the fake Maps API), and where
/// only JupyterLab's background shows.
fn map_samples() -> Vec<Sample> {
    let red = Some(MAP_RED);
    vec![
        Sample::new("Madrid", -3.7038, 40.4168, red),
        Sample::new("Barcelona", 2.1734, 41.3851, red),
        Sample::new("Valencia area", -0.7, 39.45, red),
        Sample::new("between the cities", -1.5, 41.0, None),
        Sample::new("the sea", 1.2, 39.6, None),
    ]
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
    let maps = FakeMaps::start(&fake);
    let site = MapSite::start();
    let (browser_script, opened) = support::recording_browser(home.path());
    let mut env = fake.env();
    env.push(("CARTO_AUTH_TEST_MAPS_API".into(), maps.base.clone()));
    env.push(("CARTO_AUTH_JS_URL".into(), site.js_url()));
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

    // A map in the cell, drawn from the fake Maps API with a token scoped
    // to it: the layer's colour where the places are, and JupyterLab's
    // background elsewhere, in the light theme and the dark one.
    let map = s.append(&map_cell());
    s.run_to_end(map, CELL_TIMEOUT);
    let scoped = maps.scoped_tokens();
    assert_eq!(scoped.len(), 1, "one token for the map");
    for (theme, name, background) in THEMES {
        s.theme(theme);
        let found = s.map(map, &map_samples(), &format!("map-{name}"));
        assert_colors(theme, &found, &map_samples(), background);
        assert_eq!(
            found["samples"][0]["tooltip"], "name: Madrid\nkind: capital",
            "{theme}"
        );
    }
    s.theme(LIGHT);
    let api: Vec<_> = maps
        .requests()
        .into_iter()
        .filter(|r| r.method != "OPTIONS" && r.path.starts_with("/v3/maps/"))
        .collect();
    assert!(
        api.iter().any(|r| r.path.starts_with("/v3/maps/tiles/")),
        "no tiles were asked for"
    );
    for r in &api {
        assert_eq!(r.bearer(), Some(scoped[0].token.as_str()), "{}", r.path);
    }

    // Saved: outputs and all, no session token in the file (the map's
    // scoped one is there by design).
    s.send(json!({"op": "save"}), START_TIMEOUT);
    let saved = std::fs::read_to_string(root.join(format!("{NOTEBOOK}.ipynb"))).unwrap();
    assert!(saved.contains("Sign in to CARTO") && saved.contains("CARTO session"));
    assert!(saved.contains(&scoped[0].token), "the map is saved");
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
