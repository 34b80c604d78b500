//! Runs the tests' fake CARTO on loopback, for trying the crate, the CLI and
//! the notebooks without an account. Prints the environment to use and the
//! path of an M2M credentials file, then serves until stdin closes (or
//! Ctrl-C).
//!
//! ```text
//! cargo run --example fake_carto
//! ```
//! In the paste flow, open the printed authorize URL with
//! `curl -si '<url>' | grep -i location` to see the address CARTO would have
//! shown you, and paste that.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Read;

fn main() {
    let fake = support::FakeCarto::start();
    let dir = std::env::temp_dir().join(format!("fake-carto-{}", fake.port));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let creds = fake.m2m_credentials_file(&dir);
    println!("# A fake CARTO listens on {}. In another shell:", fake.base);
    for (k, v) in fake.env() {
        println!("export {k}={v}");
    }
    println!("# M2M credentials file: {}", creds.display());
    println!("# Close stdin (Ctrl-D) to stop.");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
