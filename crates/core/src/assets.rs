//! The WebApp's page assets: what a phone's browser downloads on each page
//! load before the app runs (`assets=1` in the `webapp` profile).
//!
//! A page load fetches the app's `index.html` (the real node serves the IoT
//! demo at `/iotdemo`), then every file it references by `src` or `href`
//! (scripts, style sheets, icons) on the same origin. Files that the style
//! sheets reference in turn (fonts) are left out: a browser fetches only the
//! fonts a page uses, which only layout knows.

/// Where the real node serves the IoT demo.
pub const WEBAPP_PATH: &str = "/iotdemo/";

/// The same-origin files `html` references by `src="…"` or `href="…"`, as
/// absolute paths, in order of appearance and without repeats; relative
/// references are resolved against the folder `base` (ending in `/`).
pub fn references(base: &str, html: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for attribute in ["src=", "href="] {
        let mut rest = html;
        while let Some(at) = find_attribute(rest, attribute) {
            rest = &rest[at + attribute.len()..];
            let Some((value, after)) = quoted(rest) else {
                continue;
            };
            rest = after;
            if let Some(path) = resolve(base, value) {
                if !found.contains(&path) {
                    found.push(path);
                }
            }
        }
    }
    // In document order, whichever attribute named them.
    found.sort_by_key(|path| html.find(path.trim_start_matches(base)).unwrap_or(usize::MAX));
    found
}

/// The next `name` that starts an attribute (preceded by whitespace).
fn find_attribute(text: &str, name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(name) {
        let at = from + i;
        if text[..at].ends_with(|c: char| c.is_ascii_whitespace()) {
            return Some(at);
        }
        from = at + name.len();
    }
    None
}

/// A quoted (or bare) attribute value at the start of `text`, and what follows.
fn quoted(text: &str) -> Option<(&str, &str)> {
    let quote = text.chars().next()?;
    if quote == '"' || quote == '\'' {
        let end = text[1..].find(quote)?;
        Some((&text[1..1 + end], &text[end + 2..]))
    } else {
        let end = text
            .find(|c: char| c.is_ascii_whitespace() || c == '>')
            .unwrap_or(text.len());
        Some((&text[..end], &text[end..]))
    }
}

/// An absolute same-origin path for a reference, or `None` for another
/// origin, a fragment, a data URL and the like.
fn resolve(base: &str, reference: &str) -> Option<String> {
    let reference = reference.trim();
    let reference = reference.split('#').next()?;
    if reference.is_empty()
        || reference.starts_with("//")
        || reference.contains(':')
    {
        return None;
    }
    let path = if reference.starts_with('/') {
        reference.to_owned()
    } else {
        format!("{base}{}", reference.trim_start_matches("./"))
    };
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of the real IoT demo's `index.html`.
    const INDEX: &str = r##"<!doctype html>
<html lang="en">
  <head>
    <meta charset="UTF-8" />
    <link rel="icon" type="image/svg+xml" href="/iotdemo/vite.svg" />
    <script src="/libs/jquery.js"></script>
    <script src="/libs/semantic.min.js"></script>
    <title>IoT Demo</title>
    <script type="module" crossorigin src="/iotdemo/assets/index-CCfrWpmG.js"></script>
    <link rel="stylesheet" crossorigin href="/iotdemo/assets/index-dwVFUX2x.css">
  </head>
  <body><div id="app"></div><a href="https://reality2.ai">Reality2</a><a href="#top">top</a></body>
</html>"##;

    #[test]
    fn the_pages_own_files_are_found_in_document_order() {
        assert_eq!(
            references(WEBAPP_PATH, INDEX),
            [
                "/iotdemo/vite.svg",
                "/libs/jquery.js",
                "/libs/semantic.min.js",
                "/iotdemo/assets/index-CCfrWpmG.js",
                "/iotdemo/assets/index-dwVFUX2x.css",
            ]
        );
    }

    #[test]
    fn relative_references_resolve_and_other_origins_are_left_out() {
        let html = r#"<img src=logo.png><script src='./app.js'></script><link href="//cdn.example/x.css">
            <img src="data:image/png;base64,AA"><img src="logo.png"><x data-src="nope.js">"#;
        assert_eq!(references("/iotdemo/", html), ["/iotdemo/logo.png", "/iotdemo/app.js"]);
        assert_eq!(references("/iotdemo/", "<p>no references</p>"), Vec::<String>::new());
        assert_eq!(references("/iotdemo/", "<script src=\"unterminated"), Vec::<String>::new());
    }
}
