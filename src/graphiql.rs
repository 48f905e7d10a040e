//! GraphiQL at `GET /api/graphql`, served entirely by herald: the page is herald's own, and
//! GraphiQL and React are pinned releases vendored in `assets/graphiql/` and embedded in the
//! binary, so the page works without internet access and never changes under a running server.
//!
//! Every URL in the page is relative to it (`graphql`, `graphql/assets/…`), so GraphiQL also
//! works behind a proxy that serves herald under a path. The assets' names carry their versions:
//! they are cached for a year, and an upgrade changes the names.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// One vendored file, embedded as npm ships it and as a gzip'ed copy made when it was vendored.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    plain: &'static [u8],
    gzip: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            plain: include_bytes!(concat!("../assets/graphiql/", $name)),
            gzip: include_bytes!(concat!("../assets/graphiql/", $name, ".gz")),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

const REACT: Asset = asset!("react-18.3.1.production.min.js", JS);
const REACT_DOM: Asset = asset!("react-dom-18.3.1.production.min.js", JS);
const GRAPHIQL_JS: Asset = asset!("graphiql-3.9.0.min.js", JS);
const GRAPHIQL_CSS: Asset = asset!("graphiql-3.9.0.min.css", CSS);

const ASSETS: [&Asset; 4] = [&REACT, &REACT_DOM, &GRAPHIQL_JS, &GRAPHIQL_CSS];

/// The placeholder for the token in the headers editor: where the token goes, not a token.
const PLACEHOLDER: &str = "<paste your token>";

/// What the query editor holds when the page opens (and GraphiQL has nothing stored).
const DEFAULT_QUERY: &str = "\
# Paste an API token into the Authorization
# header below (`herald token create` prints
# one), then run this with ▶ or Ctrl-Enter.

{
  viewer {
    id
    user { email role }
  }
}
";

/// The script that starts GraphiQL; its hash goes into the page's Content-Security-Policy.
///
/// Until the placeholder in the headers is replaced, the fetcher says what to do instead of
/// sending it to the server. Each edit of the headers makes a new fetcher, which makes GraphiQL
/// load the schema again: the docs and completion follow a pasted token without a reload.
fn start_script() -> String {
    let json = |v: serde_json::Value| v.to_string();
    let headers = serde_json::json!({ "Authorization": format!("Bearer {PLACEHOLDER}") });
    format!(
        r#"
const endpoint = new URL("graphql", location.href);
const subscriptions = new URL("graphql/ws", location.href);
subscriptions.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";

function heraldFetcher() {{
  const send = GraphiQL.createFetcher({{ url: endpoint.href, subscriptionUrl: subscriptions.href }});
  return (params, options) =>
    String(options?.headers?.Authorization ?? "").includes({placeholder})
      ? Promise.resolve({{ errors: [{{ message: {hint} }}] }})
      : send(params, options);
}}

function Herald() {{
  const [fetcher, setFetcher] = React.useState(heraldFetcher);
  const pause = React.useRef();
  const headersEdited = () => {{
    clearTimeout(pause.current);
    pause.current = setTimeout(() => setFetcher(() => heraldFetcher()), 500);
  }};
  return React.createElement(GraphiQL, {{
    fetcher,
    onEditHeaders: headersEdited,
    defaultQuery: {query},
    defaultHeaders: {headers},
    defaultEditorToolsVisibility: "headers",
  }});
}}

ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(Herald));
"#,
        placeholder = json(PLACEHOLDER.into()),
        hint = json(
            "Paste an API token into the Authorization header (Headers, below the query): \
             `herald token create` prints one."
                .into()
        ),
        query = json(DEFAULT_QUERY.into()),
        headers = json(serde_json::to_string_pretty(&headers).expect("JSON").into()),
    )
}

struct Page {
    html: String,
    csp: HeaderValue,
}

static PAGE: LazyLock<Page> = LazyLock::new(|| {
    let script = start_script();
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&script));
    // Nothing leaves herald's origin: no CDN, no fonts, no analytics. GraphiQL's fonts and icons
    // are data: URLs in its CSS; React sets inline styles.
    let csp = format!(
        "default-src 'none'; script-src 'self' 'sha256-{hash}'; style-src 'self' 'unsafe-inline'; \
         font-src data:; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    );
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>herald · GraphiQL</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="graphql/assets/{css}">
<style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="graphql/assets/{react}"></script>
<script src="graphql/assets/{react_dom}"></script>
<script src="graphql/assets/{graphiql}"></script>
<script>{script}</script>
</body>
</html>
"#,
        css = GRAPHIQL_CSS.name,
        react = REACT.name,
        react_dom = REACT_DOM.name,
        graphiql = GRAPHIQL_JS.name,
    );
    Page {
        html,
        csp: HeaderValue::from_str(&csp).expect("the policy is ASCII"),
    }
});

/// `GET /api/graphql`: the GraphiQL page. Not cached, so an upgrade's new asset names are seen.
pub async fn page() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::CONTENT_SECURITY_POLICY, PAGE.csp.clone()),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        PAGE.html.as_str(),
    )
        .into_response()
}

/// `GET /api/graphql/assets/{file}`: a vendored file, gzip'ed when the client accepts gzip.
pub async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let gzip = accepts_gzip(&headers);
    let mut response = (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::VARY, "accept-encoding"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        if gzip { asset.gzip } else { asset.plain },
    )
        .into_response();
    if gzip {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// Whether `Accept-Encoding` allows gzip: listed (or `*` when gzip is not) with a q above 0.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut star = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .and_then(|(_, q)| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                return q > 0.0;
            }
            if coding == "*" {
                star = Some(q > 0.0);
            }
        }
    }
    star.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(accept_encoding: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in accept_encoding {
            headers.append(header::ACCEPT_ENCODING, v.parse().expect("header value"));
        }
        headers
    }

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        for (header, gzip) in [
            (&[][..], false),
            (&["gzip, deflate, br, zstd"][..], true),
            (&["br;q=1.0, GZIP;q=0.5"][..], true),
            (&["identity"][..], false),
            (&["gzip;q=0"][..], false),
            (&["gzip; q=0.000"][..], false),
            (&["*"][..], true),
            (&["*;q=0.1, gzip;q=0"][..], false),
            (&["gzip;q=0, *"][..], false),
            (&["br", "x-gzip"][..], true),
        ] {
            assert_eq!(accepts_gzip(&with(header)), gzip, "{header:?}");
        }
    }

    /// CRC-32 (IEEE, as gzip uses it), bit by bit: the test runs it on a few MB once.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
            }
        }
        !crc
    }

    #[test]
    fn each_gzipped_copy_is_of_its_file() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        for asset in ASSETS {
            let gz = asset.gzip;
            assert_eq!(
                &gz[..3],
                &[0x1f, 0x8b, 8],
                "{} is gzip (deflate)",
                asset.name
            );
            let trailer = &gz[gz.len() - 8..];
            let crc = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
            let len = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes"));
            assert_eq!(
                len as usize,
                asset.plain.len(),
                "{}.gz's length",
                asset.name
            );
            assert_eq!(crc, crc32(asset.plain), "{}.gz's CRC-32", asset.name);
        }
    }

    #[test]
    fn the_page_loads_only_its_own_assets() {
        let html = &PAGE.html;
        for asset in ASSETS {
            assert!(html.contains(&format!("\"graphql/assets/{}\"", asset.name)));
        }
        assert!(
            !html.contains("//"),
            "no absolute or protocol-relative URL: {html}"
        );
        let script = start_script();
        assert!(html.contains(&script));
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&script));
        assert!(PAGE
            .csp
            .to_str()
            .expect("ASCII")
            .contains(&format!("'sha256-{hash}'")));
    }
}
