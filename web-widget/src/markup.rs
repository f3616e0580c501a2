//! What every shadow root of the widget shares: the theme (CSS custom properties a
//! store sets on the page) and safe HTML writing.

use crate::prelude::*;

/// The theme: every colour and size a store may change is a custom property with a
/// default (`--patron-accent`, `--patron-accent-text`, `--patron-bg`, `--patron-text`,
/// `--patron-muted`, `--patron-radius`, `--patron-font`). `all:initial` keeps the
/// page's inherited styles out.
pub(crate) const THEME: &str = concat!(
    r#":host{all:initial;--a:var(--patron-accent,#4338ca);--at:var(--patron-accent-text,#fff);--bg:var(--patron-bg,#fff);--tx:var(--patron-text,#111827);--mu:var(--patron-muted,#6b7280);--r:var(--patron-radius,14px);font:14px/1.45 var(--patron-font,system-ui,-apple-system,"Segoe UI",Roboto,"PingFang SC","Microsoft YaHei",sans-serif);color:var(--tx)}"#,
    r#"*{box-sizing:border-box}"#,
    r#":focus-visible{outline:3px solid var(--a);outline-offset:2px}"#,
);

/// Links and images only to http(s) or same-site paths, never `javascript:`.
pub(crate) fn safe_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://") || (url.starts_with('/') && !url.starts_with("//"))
}

/// Appends `s` escaped for HTML text and double-quoted attributes.
pub(crate) fn esc(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_refuses_script_urls() {
        let mut out = String::new();
        esc(&mut out, "<img src=x onerror=\"a\">&'");
        assert_eq!(out, "&lt;img src=x onerror=&quot;a&quot;&gt;&amp;&#39;");
        assert!(!safe_url("javascript:alert(1)"));
        assert!(!safe_url("//evil.example/x"));
        assert!(safe_url("/demo/products/tea"));
    }
}
