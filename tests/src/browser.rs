//! A real headless Chromium driven over W3C WebDriver (chromedriver), for
//! tests of pages services serve. Chromium and chromedriver come from the
//! Debian packages `chromium` and `chromium-driver` (installed by
//! `scripts/deps.sh`), or `KESU_CHROMIUM` / `KESU_CHROMEDRIVER`. Missing:
//! [`Browser::start`] returns `None` (the test skips loudly), unless
//! `KESU_REQUIRE_BROWSER=1` (CI), where it panics.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::{WAIT, eventually};

fn find(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Ok(path) = std::env::var(var) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))).find(|p| p.is_file())
}

/// A chromedriver process with one headless Chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Browser {
    pub async fn start() -> Option<Browser> {
        let required = std::env::var("KESU_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        let (Some(chromium), Some(chromedriver)) = (
            find("KESU_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]),
            find("KESU_CHROMEDRIVER", &["chromedriver"]),
        ) else {
            assert!(!required, "KESU_REQUIRE_BROWSER=1 but chromium or chromedriver is missing: run scripts/deps.sh");
            eprintln!("SKIPPED: chromium or chromedriver is missing (run scripts/deps.sh)");
            return None;
        };
        let port = kesu_testkit::free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display()));
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let mut browser = Browser { driver, base, session: String::new(), http };
        eventually("chromedriver is ready", WAIT, || async {
            let r = browser.http.get(format!("{}/status", browser.base)).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,1900", "--lang=en-US"],
            },
        }}});
        let answer = browser.call("POST", "/session", Some(capabilities)).await;
        browser.session = answer["sessionId"].as_str().expect("a session id").to_string();
        Some(browser)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "POST" => self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(serde_json::to_string(&body.unwrap_or_else(|| json!({}))).expect("JSON")),
            "DELETE" => self.http.delete(url),
            _ => self.http.get(url),
        };
        let response = request.timeout(Duration::from_secs(60)).send().await.expect("chromedriver answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("WebDriver JSON: {text}"));
        assert!(status.is_success(), "WebDriver {method} {path}: {status} {text}");
        value["value"].clone()
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub async fn goto(&self, url: &str) {
        self.call("POST", &self.path("/url"), Some(json!({ "url": url }))).await;
    }

    /// Runs JavaScript in the page; its `return` value.
    pub async fn script(&self, source: &str) -> Value {
        self.call("POST", &self.path("/execute/sync"), Some(json!({ "script": source, "args": [] }))).await
    }

    /// The visible text of the element with this id.
    pub async fn text(&self, id: &str) -> String {
        let v =
            self.script(&format!("const e = document.getElementById({id:?}); return e ? e.innerText : null;")).await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// Saves a PNG screenshot of the window.
    pub async fn screenshot(&self, to: &std::path::Path) {
        let png = self.call("GET", &self.path("/screenshot"), None).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().expect("base64")).expect("a PNG");
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).expect("create the artifact directory");
        }
        std::fs::write(to, bytes).expect("write the screenshot");
    }

    pub async fn quit(mut self) {
        self.call("DELETE", &self.path(""), None).await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where tests leave artifacts: `target/test-artifacts/`.
pub fn artifact(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| kesu_testkit::workspace_root().join("target"));
    target.join("test-artifacts").join(name)
}
