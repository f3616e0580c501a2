//! `GET /widget/{file}`: the built widget — the loader `patron.js`, the wasm-bindgen
//! glue `patron_widget.js` and the module `patron_bg.wasm` — embedded in the binary
//! when `web-widget/dist/` was built before it (`host/build.rs`), or read from a
//! directory (`PATRON_WIDGET_DIR`, or `web-widget/dist/`), gzip-encoded when the browser
//! accepts it and `build.sh` left a `.gz` beside the file.
//!
//! The loader is fetched by a fixed URL, so it is cached for minutes; it imports the
//! other two with `?v=<content hash>`, and such versioned URLs are cached for a year.
//! Every asset allows any origin: storefronts on other origins import the module and
//! fetch the wasm with CORS.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sha2::Digest as _;

/// The files the widget consists of, with their content types.
const FILES: [(&str, &str); 3] = [
    ("patron.js", "text/javascript; charset=utf-8"),
    ("patron_widget.js", "text/javascript; charset=utf-8"),
    ("patron_bg.wasm", "application/wasm"),
];
const CACHE_UNVERSIONED: &str = "public, max-age=300";
const CACHE_VERSIONED: &str = "public, max-age=31536000, immutable";

/// Where the built widget is; cloning it is cheap.
#[derive(Clone, Debug)]
pub struct WidgetAssets {
    dir: Arc<PathBuf>,
    /// Serve the copy built into the binary (`crate::embedded::WIDGET`), not `dir`.
    embedded: bool,
}

impl WidgetAssets {
    /// Serves the widget from `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: Arc::new(dir.into()), embedded: false }
    }

    /// What `patron serve` serves: `$PATRON_WIDGET_DIR`, else the widget built into
    /// this binary, else (a binary built before the widget) as [`Self::from_env`].
    pub fn resolve() -> Self {
        if std::env::var_os("PATRON_WIDGET_DIR").is_none() && crate::embedded::widget_file("patron.js").is_some() {
            return Self { dir: Arc::new(PathBuf::new()), embedded: true };
        }
        Self::from_env()
    }

    /// Whether the widget's loader can be served.
    pub fn is_built(&self) -> bool {
        if self.embedded {
            crate::embedded::widget_file("patron.js").is_some()
        } else {
            self.dir.join("patron.js").is_file()
        }
    }

    /// Where the widget comes from, for messages.
    pub fn describe(&self) -> String {
        if self.embedded { "built into this binary".to_owned() } else { self.dir.display().to_string() }
    }

    /// `$PATRON_WIDGET_DIR`, else `web-widget/dist` under the working directory, else
    /// the `web-widget/dist` of the source tree this host was built from.
    pub fn from_env() -> Self {
        if let Some(dir) = std::env::var_os("PATRON_WIDGET_DIR") {
            return Self::new(dir);
        }
        let local = PathBuf::from("web-widget/dist");
        if local.is_dir() {
            return Self::new(local);
        }
        Self::new(FsPath::new(env!("CARGO_MANIFEST_DIR")).join("../web-widget/dist"))
    }

    /// The directory served (unless the widget is embedded).
    pub fn dir(&self) -> &FsPath {
        &self.dir
    }
}

pub(super) fn router<S: Clone + Send + Sync + 'static>(assets: WidgetAssets) -> Router<S> {
    Router::new().route("/widget/{file}", get(asset)).with_state(assets)
}

async fn asset(
    State(assets): State<WidgetAssets>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some((name, content_type)) = FILES.iter().find(|(name, _)| *name == file) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such widget file");
    };
    let accepts_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let versioned = query.is_some_and(|q| q.split('&').any(|p| p.starts_with("v=")));
    if assets.embedded {
        return embedded_asset(name, content_type, accepts_gzip, versioned, &headers);
    }
    let path = assets.dir().join(name);
    let gz_path = assets.dir().join(format!("{name}.gz"));
    let (served, gzipped) = if accepts_gzip && gz_path.is_file() { (gz_path, true) } else { (path, false) };
    let Ok(metadata) = tokio::fs::metadata(&served).await else {
        tracing::warn!(dir = %assets.dir().display(), "widget asset {name} missing: run web-widget/build.sh");
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "widget_not_built",
            "the widget is not built on this host (web-widget/build.sh)",
        );
    };
    let modified = metadata.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    let etag = format!("\"{:x}-{:x}{}\"", metadata.len(), modified, if gzipped { "-gz" } else { "" });

    let response = if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match tokio::fs::read(&served).await {
            Ok(bytes) => bytes.into_response(),
            Err(_) => {
                return error(StatusCode::SERVICE_UNAVAILABLE, "widget_not_built", "the widget could not be read");
            }
        }
    };
    with_headers(response, content_type, versioned, &etag, gzipped)
}

/// A file of the widget built into the binary; its ETag is a hash of its content.
fn embedded_asset(
    name: &str,
    content_type: &'static str,
    accepts_gzip: bool,
    versioned: bool,
    headers: &HeaderMap,
) -> Response {
    let gz = accepts_gzip.then(|| crate::embedded::widget_file(&format!("{name}.gz"))).flatten();
    let Some((bytes, gzipped)) =
        gz.map(|b| (b, true)).or_else(|| crate::embedded::widget_file(name).map(|b| (b, false)))
    else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "widget_not_built", "the widget is not built into this binary");
    };
    let file = if gzipped { format!("{name}.gz") } else { name.to_owned() };
    let etag = embedded_etag(&file);
    let response = if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        bytes.into_response()
    };
    with_headers(response, content_type, versioned, &etag, gzipped)
}

/// The ETag of an embedded file: a hash of its content, computed once per file.
fn embedded_etag(file: &str) -> String {
    static ETAGS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, String>>> =
        std::sync::OnceLock::new();
    let mut etags = ETAGS.get_or_init(Default::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    etags
        .entry(file.to_owned())
        .or_insert_with(|| {
            let digest = sha2::Sha256::digest(crate::embedded::widget_file(file).unwrap_or_default());
            format!("\"{}\"", hex::encode(&digest[..8]))
        })
        .clone()
}

fn with_headers(
    mut response: Response,
    content_type: &'static str,
    versioned: bool,
    etag: &str,
    gzipped: bool,
) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if versioned { CACHE_VERSIONED } else { CACHE_UNVERSIONED }),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
    if let Ok(etag) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, etag);
    }
    if gzipped {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": { "code": code, "message": message } }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn dist() -> (tempfile_dir::Dir, Router) {
        let dir = tempfile_dir::Dir::new();
        std::fs::write(dir.path().join("patron.js"), "/*loader*/").expect("write");
        std::fs::write(dir.path().join("patron_bg.wasm"), b"\0asm").expect("write");
        std::fs::write(dir.path().join("patron_bg.wasm.gz"), b"gz").expect("write");
        let app = router::<()>(WidgetAssets::new(dir.path()));
        (dir, app)
    }

    /// A temporary directory removed on drop (the host has no tempfile dependency).
    mod tempfile_dir {
        pub(super) struct Dir(std::path::PathBuf);
        impl Dir {
            pub(super) fn new() -> Self {
                let path = std::env::temp_dir().join(format!("patron-widget-test-{}", crate::store::new_id()));
                std::fs::create_dir_all(&path).expect("temp dir");
                Self(path)
            }
            pub(super) fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    async fn get(app: &Router, uri: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::get(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        app.clone().oneshot(req.body(Body::empty()).expect("request")).await.expect("response")
    }

    #[tokio::test]
    async fn serves_the_loader_with_type_cors_and_short_cache() {
        let (_dir, app) = dist();
        let res = get(&app, "/widget/patron.js", &[]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(res.headers()[header::CACHE_CONTROL], CACHE_UNVERSIONED);
        let etag = res.headers()[header::ETAG].to_str().expect("etag").to_owned();
        let again = get(&app, "/widget/patron.js", &[("if-none-match", &etag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }

    #[tokio::test]
    async fn versioned_wasm_is_immutable_and_gzipped_when_accepted() {
        let (_dir, app) = dist();
        let res = get(&app, "/widget/patron_bg.wasm?v=abc", &[("accept-encoding", "gzip, br")]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/wasm");
        assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(res.headers()[header::CACHE_CONTROL], CACHE_VERSIONED);
    }

    #[tokio::test]
    async fn unknown_and_unbuilt_files_are_json_errors() {
        let (_dir, app) = dist();
        assert_eq!(get(&app, "/widget/secret.txt", &[]).await.status(), StatusCode::NOT_FOUND);
        let missing = get(&app, "/widget/patron_widget.js", &[]).await;
        assert_eq!(missing.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
