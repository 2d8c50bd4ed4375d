//! A small WebDriver client for the browser tests: real headless Chromium
//! driven through chromedriver (Debian's packages `chromium` and
//! `chromium-driver`). A missing browser fails the test; it never skips.

use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long any wait in a browser test may take before it fails.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    /// chromedriver's address, `127.0.0.1:PORT`.
    driver_address: String,
    user_data: PathBuf,
    pub download_dir: PathBuf,
}

/// Ends the browser when the test ends, passed or failed: the session is
/// closed (Chromium quits), then chromedriver's whole process group is
/// killed, so no Chromium outlives its test even if the session hangs.
impl Drop for Browser {
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let path = self
            .session
            .split_once(&self.driver_address)
            .map(|(_, path)| path.to_owned())
            .unwrap_or_default();
        if let Ok(mut stream) = std::net::TcpStream::connect(&self.driver_address) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                self.driver_address
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        // chromedriver leads a process group of its own (see `start`).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.user_data);
    }
}

/// Polls `check` until it returns `Some`, failing after [`WAIT_LIMIT`].
pub async fn wait_until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Signs `username` in through the sign-in page and waits for the page
    /// their role lands on.
    pub async fn sign_in(&self, app: &super::TestApp, username: &str) {
        self.goto(&app.url("/login")).await;
        self.type_into("#username", username).await;
        self.type_into("#password", super::PASSWORD).await;
        self.click("#login").await;
        wait_until("the landing page after sign-in", || async {
            let url = self.current_url().await;
            (!url.contains("/login")).then_some(())
        })
        .await;
    }

    /// Chooses 省, 市 and 区/县 in the customer's cascade of drop-downs,
    /// once the division table has turned the fields into them.
    pub async fn choose_region(&self, province: &str, city: &str, district: &str) {
        wait_until("the region drop-downs", || async {
            (self
                .execute("return document.getElementById('district').tagName;")
                .await
                == "SELECT")
                .then_some(())
        })
        .await;
        for (id, value) in [
            ("province", province),
            ("city", city),
            ("district", district),
        ] {
            let chosen = self
                .execute(&format!("var s = document.getElementById('{id}'); s.value = '{value}'; s.dispatchEvent(new Event('change')); return s.value;"))
                .await;
            assert_eq!(chosen, value, "{id} offers {value}");
        }
    }

    pub async fn start(width: u32, height: u32, download_dir: &Path) -> Self {
        let driver_path =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let port = free_port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            // A group of its own, which Chromium joins, so one kill ends both.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("chromedriver must be installed for the browser tests ({driver_path}): {e}")
            });
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        wait_until("chromedriver to start", || {
            let http = http.clone();
            let url = format!("{base}/status");
            async move {
                http.get(url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            }
        })
        .await;
        let user_data = std::env::temp_dir().join(format!(
            "kaquan-chromium-{}",
            kaquan_core::secrets::random_token_hex(6)
        ));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--lang=zh-CN", format!("--window-size={width},{height}"), format!("--user-data-dir={}", user_data.display())],
                // A Chinese phone or desk, as our users have: the customers'
                // pages follow the browser's languages.
                "prefs": {"download.default_directory": download_dir.display().to_string(), "download.prompt_for_download": false,
                          "intl.accept_languages": "zh-CN,zh"}
            }
        }}});
        let response: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromium did not start: {response}"))
            .to_owned();
        let browser = Self {
            driver,
            http,
            session: format!("{base}/session/{session}"),
            driver_address: format!("127.0.0.1:{port}"),
            user_data,
            download_dir: download_dir.to_owned(),
        };
        browser
            .command(
                "POST",
                "/goog/cdp/execute",
                json!({"cmd": "Page.setDownloadBehavior", "params": {"behavior": "allow", "downloadPath": download_dir.display().to_string()}}),
            )
            .await;
        // A window cannot be narrower than Chromium's minimum (about 500
        // px), so a phone's width is emulated: the page lays out at exactly
        // `width` CSS pixels, as on the phone.
        browser
            .command(
                "POST",
                "/goog/cdp/execute",
                json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 800}}),
            )
            .await;
        browser
    }

    async fn command(&self, method: &str, path: &str, body: Value) -> Value {
        self.try_command(method, path, body)
            .await
            .unwrap_or_else(|error| panic!("webdriver {method} {path}: {error}"))
    }

    async fn try_command(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}{path}", self.session);
        let request = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).json(&body),
        };
        let response: Value = request
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        match response["value"].get("error") {
            Some(error) => Err(format!("{error} {}", response["value"]["message"])),
            None => Ok(response["value"].clone()),
        }
    }

    /// Runs an element command, finding the element again if the page
    /// replaced it meanwhile (a navigation after a click or submit).
    async fn on_element(&self, css: &str, method: &str, action: &str, body: Value) -> Value {
        wait_until(&format!("{action} on {css}"), || async {
            let id = self.find_id(css).await?;
            self.try_command(method, &format!("/element/{id}{action}"), body.clone())
                .await
                .ok()
        })
        .await
    }

    pub async fn goto(&self, url: &str) {
        self.command("POST", "/url", json!({"url": url})).await;
    }

    pub async fn current_url(&self) -> String {
        self.command("GET", "/url", Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn find_id(&self, css: &str) -> Option<String> {
        let response: Value = self
            .http
            .post(format!("{}/element", self.session))
            .json(&json!({"using": "css selector", "value": css}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        response["value"][ELEMENT_KEY].as_str().map(str::to_owned)
    }

    pub async fn exists(&self, css: &str) -> bool {
        self.find_id(css).await.is_some()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, "POST", "/clear", json!({})).await;
        self.on_element(css, "POST", "/value", json!({"text": text}))
            .await;
    }

    pub async fn click(&self, css: &str) {
        self.on_element(css, "POST", "/click", json!({})).await;
    }

    pub async fn text(&self, css: &str) -> String {
        self.on_element(css, "GET", "/text", Value::Null)
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Waits until the element's text contains `needle`, and returns it.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        wait_until(&format!("{css} to say {needle:?}"), || async {
            let id = self.find_id(css).await?;
            // The page may navigate between finding and reading: try again then.
            let text = self
                .try_command("GET", &format!("/element/{id}/text"), Value::Null)
                .await
                .ok()?;
            let text = text.as_str().unwrap_or("").to_owned();
            text.contains(needle).then_some(text)
        })
        .await
    }

    pub async fn execute(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Answers every confirm() on the current page with OK.
    pub async fn accept_confirms(&self) {
        self.execute("window.confirm = function () { return true; };")
            .await;
    }

    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let data = self.command("GET", "/screenshot", Value::Null).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// Waits for a finished download whose name ends with `extension`.
    pub async fn wait_for_download(&self, extension: &str) -> PathBuf {
        let path = wait_until(&format!("a .{extension} download"), || async {
            std::fs::read_dir(&self.download_dir)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.extension().is_some_and(|x| x == extension))
        })
        .await;
        // A zip (xlsx) may show under its name before its last bytes are
        // written: wait for its end-of-central-directory record.
        if extension == "xlsx" || extension == "zip" {
            wait_until(&format!("the whole .{extension} download"), || async {
                std::fs::read(&path)
                    .ok()
                    .filter(|b| b.windows(4).rev().take(65_557).any(|w| w == b"PK\x05\x06"))
            })
            .await;
        }
        if extension == "pdf" {
            wait_until("the whole .pdf download", || async {
                std::fs::read(&path)
                    .ok()
                    .filter(|b| b.ends_with(b"%%EOF\n"))
            })
            .await;
        }
        path
    }
}

/// A phone-sized browser (390 × 844) downloading into a new folder.
pub async fn phone(dir: &str) -> Browser {
    Browser::start(390, 844, &super::temp_dir(dir)).await
}

/// Sets a form field's value through the page (date inputs, selects).
pub async fn set_value(browser: &Browser, css: &str, value: &str) {
    browser
        .execute(&format!(
            "var el = document.querySelector('{css}'); el.value = '{value}'; el.dispatchEvent(new Event('change', {{bubbles: true}}));"
        ))
        .await;
}
