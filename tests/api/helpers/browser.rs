//! `Browser`: headless Chromium driven through chromedriver (WebDriver), cut off from every host
//! but loopback, for the tests of the pages herald serves (GraphiQL, the dashboard).

use super::{closed_port, DEADLINE};
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::io::AsyncBufReadExt;

/// Saves what the browser shows, for a person to look at.
pub async fn screenshot(client: &Client, path: &Path) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(path, png).expect("write screenshot");
    let _ = writeln!(std::io::stderr(), "screenshot: {}", path.display());
}

/// The URLs of every resource the page in `client` loaded (scripts, styles, fetches).
pub async fn loaded_urls(client: &Client) -> Vec<String> {
    let loaded = client
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            vec![],
        )
        .await
        .expect("resource timing");
    loaded
        .as_array()
        .expect("URLs")
        .iter()
        .map(|url| url.as_str().expect("URL").to_owned())
        .collect()
}

/// Headless Chromium driven through chromedriver, with every host but loopback unreachable:
/// names other than 127.0.0.1 do not resolve, and everything but loopback goes through a proxy
/// on a port where nothing listens.
pub struct Browser {
    client: Client,
    _driver: tokio::process::Child,
}

impl Browser {
    /// `None` (after saying so) when chromium or chromedriver is missing, unless
    /// `HERALD_REQUIRE_BROWSER=1`.
    pub async fn start() -> Option<Browser> {
        let driver = find_executable(&["chromedriver"]);
        let chromium = find_executable(&[
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ]);
        let (Some(driver), Some(chromium)) = (driver, chromium) else {
            let message = "the browser test needs chromium and chromedriver on PATH \
                           (Debian/Ubuntu: apt-get install chromium chromium-driver)";
            assert!(
                std::env::var("HERALD_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "HERALD_REQUIRE_BROWSER=1 but {message}"
            );
            // Straight to stderr: the test harness would hide a print of a passing test.
            let _ = writeln!(std::io::stderr(), "skipped: {message}");
            return None;
        };

        let mut child = tokio::process::Command::new(&driver)
            .arg("--port=0")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", driver.display()));
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let port = tokio::time::timeout(DEADLINE, async {
            while let Some(line) = lines.next_line().await.expect("read chromedriver") {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    return rest.trim_end_matches('.').parse::<u16>().expect("port");
                }
            }
            panic!("chromedriver exited without saying its port");
        })
        .await
        .expect("chromedriver starts in time");
        // chromedriver keeps writing to stdout; a full pipe would stall it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let dead_port = closed_port();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    // CI runs as root, where Chromium's sandbox cannot start; the page is ours.
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--window-size=1280,800",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                    format!("--proxy-server=http://127.0.0.1:{dead_port}"),
                    "--proxy-bypass-list=127.0.0.1",
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let client = tokio::time::timeout(
            DEADLINE,
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await
        .expect("Chromium starts in time")
        .expect("a WebDriver session");
        Some(Browser {
            client,
            _driver: child,
        })
    }

    /// Runs `steps`, then quits the browser whether they passed or not.
    pub async fn run<F, Fut>(self, steps: F)
    where
        F: FnOnce(Client) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let outcome = tokio::spawn(steps(self.client.clone())).await;
        let _ = self.client.close().await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

fn find_executable(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}
