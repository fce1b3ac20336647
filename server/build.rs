//! Builds the dashboard (`frontend/`) into `frontend/dist` when Node.js 20 or newer is present,
//! and tells `http::dashboard` which folder to embed (`DEVSIGNAL_DASHBOARD_DIR`).
//!
//! Without Node (or with `DEVSIGNAL_SKIP_FRONTEND=1`) an existing `frontend/dist` is embedded as
//! it is, and when there is none an empty folder is, so the server still builds and `/` says how
//! to get the dashboard. Cargo reruns this only when the app's sources, its package files or
//! `schema.graphql` change; never on `dist`, which this script writes.

use std::path::{Path, PathBuf};
use std::process::Command;

const WATCHED: [&str; 8] = [
    "src",
    "index.html",
    "graphiql.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
    "public",
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let frontend = manifest.join("..").join("frontend");
    let dist = frontend.join("dist");
    println!("cargo:rerun-if-env-changed=DEVSIGNAL_SKIP_FRONTEND");
    println!("cargo:rerun-if-env-changed=PATH");
    for name in WATCHED {
        println!("cargo:rerun-if-changed={}", frontend.join(name).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        manifest.join("..").join("schema.graphql").display()
    );

    let skip = std::env::var("DEVSIGNAL_SKIP_FRONTEND").is_ok_and(|v| v == "1" || v == "true");
    if !skip && frontend.join("package.json").exists() {
        match node_major() {
            Some(major) if major >= 20 => build(&frontend),
            Some(major) => println!(
                "cargo:warning=Node.js {major} found; the dashboard needs Node.js 20 or newer, so it is not built"
            ),
            None => println!(
                "cargo:warning=Node.js not found: building without the dashboard (/ explains how to get it)"
            ),
        }
    }

    let embed = if dist.join("index.html").exists() {
        dist
    } else {
        let empty =
            PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("no-dashboard");
        if let Err(e) = std::fs::create_dir_all(&empty) {
            panic!("creating {}: {e}", empty.display());
        }
        empty
    };
    println!(
        "cargo:rustc-env=DEVSIGNAL_DASHBOARD_DIR={}",
        embed.display()
    );
}

fn node_major() -> Option<u32> {
    let out = Command::new("node").arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let version = String::from_utf8_lossy(&out.stdout);
    version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

fn build(frontend: &Path) {
    let installed = frontend.join("node_modules").join(".package-lock.json");
    let lock = frontend.join("package-lock.json");
    let stale = match (modified(&installed), modified(&lock)) {
        (Some(installed), Some(lock)) => lock > installed,
        _ => true,
    };
    if stale {
        run(frontend, &["ci", "--no-audit", "--no-fund"]);
    }
    run(frontend, &["run", "build"]);
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

fn run(dir: &Path, args: &[&str]) {
    let status = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .stdout(std::io::stderr())
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "`npm {}` in {} failed ({s}); fix the dashboard, or build without it with DEVSIGNAL_SKIP_FRONTEND=1",
            args.join(" "),
            dir.display()
        ),
        Err(e) => {
            panic!("running npm: {e}; build without the dashboard with DEVSIGNAL_SKIP_FRONTEND=1")
        }
    }
}
