//! "Join with a phone": a QR code (SVG, from the `qrcode` crate) of the
//! device-mode URL for the current run, the URL as text, and the address
//! phones use, editable — a page opened via `localhost` cannot be reached
//! from a phone, and motion sensors need HTTPS.
//!
//! The address is taken, in order, from the page's `&phone=` parameter
//! (`cargo xtask run` prints a control-page link carrying it), from what the
//! user typed before (local storage), or guessed from the page's own origin
//! (the local node's plain port 4006 becomes its HTTPS port 4005).

use qrcode::render::svg;
use qrcode::QrCode;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::browser::{origin, query_string};

/// Where the typed phone address is kept.
const ORIGIN_STORAGE_KEY: &str = "r2-stress.phone-origin";
/// The local node's plain HTTP port and its HTTPS port (as the real node's).
const NODE_HTTP_PORT: &str = "4006";
const NODE_HTTPS_PORT: &str = "4005";
/// The URL under the code: readable on the dark page, wrapped anywhere.
const LINK_STYLE: &str = "color:#8cc8ff;word-break:break-all";
/// The QR code's smallest side, in CSS pixels.
const QR_PX: u32 = 220;

/// The parts of `scheme://host[:port]`, if `origin` has that shape.
fn split_origin(origin: &str) -> Option<(&str, &str, Option<&str>)> {
    let (scheme, rest) = origin.split_once("://")?;
    let rest = rest.trim_end_matches('/');
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains(['/', '?', '#', ' '])
    {
        return None;
    }
    // `[v6]:port`, or `host:port`.
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') && port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, Some(port))
        }
        _ => (rest, None),
    };
    (!host.is_empty()).then_some((scheme, host, port))
}

/// Whether `host` only names this machine (a phone cannot reach it).
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.starts_with("127.")
        || host == "::1"
        || host == "0.0.0.0"
}

/// The address phones should use, guessed from the page's origin: `None`
/// when the page was opened via a loopback name.
pub fn phone_origin_guess(page_origin: &str) -> Option<String> {
    let (scheme, host, port) = split_origin(page_origin)?;
    if is_loopback_host(host) {
        return None;
    }
    if scheme == "http" && port == Some(NODE_HTTP_PORT) {
        return Some(format!("https://{host}:{NODE_HTTPS_PORT}"));
    }
    Some(page_origin.trim_end_matches('/').to_owned())
}

/// A typed phone address, checked: `http(s)://host[:port]`, no path.
pub fn checked_origin(typed: &str) -> Result<String, String> {
    let typed = typed.trim().trim_end_matches('/');
    let typed = if typed.contains("://") {
        typed.to_owned()
    } else {
        format!("https://{typed}")
    };
    match split_origin(&typed) {
        Some((_, host, _)) if is_loopback_host(host) => Err(format!(
            "{host} is this machine's own name: a phone cannot reach it. Use its address on the local network."
        )),
        Some(_) => Ok(typed),
        None => Err(format!(
            "{typed:?} is not an address like https://192.168.1.20:4005"
        )),
    }
}

/// The device-mode URL: the page at `path` on `phone_origin`, with the
/// run's name `prefix`, and `node` when the node is not the page's origin.
pub fn device_url(
    phone_origin: &str,
    path: &str,
    prefix: Option<&str>,
    node: Option<&str>,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::from("device"));
    if let Some(prefix) = prefix {
        query.append_pair("run", prefix);
    }
    if let Some(node) = node {
        query.append_pair("node", node);
    }
    let path = if path.starts_with('/') { path } else { "/" };
    format!(
        "{}{path}?{}",
        phone_origin.trim_end_matches('/'),
        query.finish()
    )
}

/// The QR code of `text` as an SVG document.
fn qr_svg(text: &str) -> Result<String, qrcode::types::QrError> {
    Ok(QrCode::new(text.as_bytes())?
        .render::<svg::Color>()
        .min_dimensions(QR_PX, QR_PX)
        .build())
}

fn stored_origin() -> Option<String> {
    web_sys::window()?
        .local_storage()
        .ok()??
        .get_item(ORIGIN_STORAGE_KEY)
        .ok()?
}

fn store_origin(value: &str) {
    if let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = storage.set_item(ORIGIN_STORAGE_KEY, value);
    }
}

/// The `phone` parameter of the page's query string.
fn phone_param(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, v)| k == "phone" && !v.trim().is_empty())
        .map(|(_, v)| v.into_owned())
}

#[derive(Properties, PartialEq)]
pub struct JoinQrProps {
    /// The current run's name prefix (`None` before a run is created: a
    /// phone then names itself).
    #[prop_or_default]
    pub prefix: Option<AttrValue>,
    /// The node address the run uses (passed on when it is not the page's origin).
    #[prop_or_default]
    pub node: Option<AttrValue>,
}

#[function_component(JoinQr)]
pub fn join_qr(props: &JoinQrProps) -> Html {
    let page_origin = use_memo((), |_| origin());
    let typed = use_state(|| {
        phone_param(&query_string())
            .or_else(stored_origin)
            .or_else(|| phone_origin_guess(&page_origin))
            .unwrap_or_default()
    });
    let oninput = {
        let typed = typed.clone();
        Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            store_origin(&input.value());
            typed.set(input.value());
        })
    };
    let path = web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .unwrap_or_else(|| "/".into());
    let node = props
        .node
        .as_deref()
        .map(|n| n.trim_end_matches('/'))
        .filter(|n| !n.is_empty() && *n != page_origin.as_str());
    let opened_locally =
        split_origin(&page_origin).is_some_and(|(_, host, _)| is_loopback_host(host));

    let usable = checked_origin(&typed);
    let body = match usable.clone() {
        Ok(phone_origin) => {
            let url = device_url(&phone_origin, &path, props.prefix.as_deref(), node);
            let picture = match qr_svg(&url) {
                Ok(svg) => Html::from_html_unchecked(AttrValue::from(svg)),
                Err(e) => html! { <p class="error">{ format!("no QR code: {e}") }</p> },
            };
            let insecure = phone_origin.starts_with("http://");
            let node_unreachable = node
                .and_then(split_origin)
                .is_some_and(|(_, h, _)| is_loopback_host(h));
            html! { <>
                <div id="r2-join-qr" class="qr">{ picture }</div>
                <p><a id="r2-join-url" href={url.clone()} style={LINK_STYLE}>{ url }</a></p>
                if insecure {
                    <p class="warning">{ "This address is plain HTTP: phones will not give it their motion sensor (it needs HTTPS, port 4005 on the local node). They can still use the colour buttons." }</p>
                }
                if node_unreachable {
                    <p class="warning">{ "The node address is this machine's own name: phones cannot reach it. Use the node's network address in the form." }</p>
                }
            </> }
        }
        Err(why) => html! { <p class="warning" id="r2-join-missing">{
            if typed.trim().is_empty() { "Enter the address phones use to reach this machine.".to_owned() } else { why }
        }</p> },
    };
    html! {
        <section class="join" aria-label="join with a phone">
            <h2>{ "Join with a phone" }</h2>
            <p>{ "A phone that opens this link becomes one more device of the run, moving its own sentant with its motion sensor (or colour buttons)." }
               if props.prefix.is_none() { { " Create a run first to give phones its name prefix." } }</p>
            { body }
            <label>{ "Address phones use: " }
                <input id="join-origin" value={(*typed).clone()} placeholder="https://192.168.1.20:4005" {oninput} />
            </label>
            if opened_locally && usable.is_err() {
                <p class="note">{ "This page was opened via this machine's own name (localhost), which phones cannot reach: enter its address on the local network, as `cargo xtask run` prints it. Phones must accept the node's self-signed certificate once." }</p>
            }
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_pages_need_an_address_and_the_plain_port_becomes_https() {
        assert_eq!(phone_origin_guess("http://127.0.0.1:4006"), None);
        assert_eq!(phone_origin_guess("http://localhost:8080"), None);
        assert_eq!(phone_origin_guess("https://[::1]:4005"), None);
        assert_eq!(
            phone_origin_guess("http://192.168.1.20:4006").as_deref(),
            Some("https://192.168.1.20:4005")
        );
        assert_eq!(
            phone_origin_guess("https://lab.example:4005").as_deref(),
            Some("https://lab.example:4005")
        );
        assert_eq!(
            phone_origin_guess("http://lab.example:8080").as_deref(),
            Some("http://lab.example:8080")
        );
        assert_eq!(phone_origin_guess("file:///x"), None);
    }

    #[test]
    fn typed_addresses_are_checked() {
        assert_eq!(
            checked_origin(" 192.168.1.20:4005/ ").as_deref(),
            Ok("https://192.168.1.20:4005")
        );
        assert_eq!(
            checked_origin("https://[fe80::1]:4005").as_deref(),
            Ok("https://[fe80::1]:4005")
        );
        assert!(checked_origin("https://localhost:4005").is_err_and(|e| e.contains("cannot reach")));
        assert!(checked_origin("").is_err());
        assert!(checked_origin("https://h:4005/stresstest/").is_err());
        assert!(checked_origin("ftp://h").is_err());
    }

    #[test]
    fn device_urls_carry_the_run_and_a_foreign_node() {
        assert_eq!(
            device_url(
                "https://10.0.0.2:4005/",
                "/stresstest/",
                Some("r2s-ab12cd34-1-"),
                None
            ),
            "https://10.0.0.2:4005/stresstest/?device&run=r2s-ab12cd34-1-"
        );
        assert_eq!(
            device_url("https://h", "/s/", None, Some("https://n:4005")),
            "https://h/s/?device&node=https%3A%2F%2Fn%3A4005"
        );
        assert_eq!(device_url("https://h", "", None, None), "https://h/?device");
        let svg = qr_svg(&device_url("https://h", "/s/", Some("r2s-x-1-"), None)).expect("fits");
        assert!(
            svg.contains("<svg") && svg.contains("width=\""),
            "{svg:.80}"
        );
    }

    #[test]
    fn the_phone_parameter_is_decoded() {
        assert_eq!(
            phone_param("devices=3&phone=https%3A%2F%2F10.0.0.2%3A4005").as_deref(),
            Some("https://10.0.0.2:4005")
        );
        assert_eq!(phone_param("phone="), None);
    }
}
