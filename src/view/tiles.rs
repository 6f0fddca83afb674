//! The device grid on one canvas: a square per device, coloured by the last
//! value its signals brought back, dimmed while it is not live. A canvas
//! costs the same few draw calls per device whatever the count, where a DOM
//! grid of thousands of elements would be diffed four times a second; it is
//! drawn again only when a tile changed (the props compare equal otherwise).
//! The device under the pointer is named in the canvas's title.

use std::rc::Rc;

use r2_core::names::name_in;
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};
use yew::prelude::*;

use crate::run::Tile;

/// A tile's side and the gap after it, CSS pixels.
const SIDE: f64 = 30.0;
const GAP: f64 = 3.0;
/// Below this side the values are left out (they would not be legible).
const MIN_SIDE_FOR_TEXT: f64 = 18.0;
/// A tile's colour before its device has a value.
const NO_VALUE: &str = "#2a3140";
/// The grid's width when the canvas has no layout width yet.
const FALLBACK_WIDTH: f64 = 800.0;

#[derive(Properties, PartialEq)]
pub struct TilesProps {
    pub tiles: Rc<Vec<Tile>>,
    /// The run's name prefix: device `i` is `prefix` + `i` (4 digits).
    pub prefix: AttrValue,
}

/// The grid's geometry for `count` tiles in `width` CSS pixels: the side
/// (smaller for large counts, so thousands fit a screen) and the columns.
fn layout(count: usize, width: f64) -> (f64, usize) {
    let side = match count {
        0..=400 => SIDE,
        401..=2000 => 16.0,
        _ => 8.0,
    };
    let columns = ((width + GAP) / (side + GAP)).floor().max(1.0) as usize;
    (side, columns)
}

/// Draws `tiles` on `canvas`, sized to its layout width.
fn draw(canvas: &HtmlCanvasElement, tiles: &[Tile]) {
    let width = match f64::from(canvas.client_width()) {
        w if w > 0.0 => w,
        _ => FALLBACK_WIDTH,
    };
    let (side, columns) = layout(tiles.len(), width);
    let rows = tiles.len().div_ceil(columns).max(1);
    let height = rows as f64 * (side + GAP);
    let ratio = web_sys::window()
        .map_or(1.0, |w| w.device_pixel_ratio())
        .max(1.0);
    let (pixels_w, pixels_h) = ((width * ratio) as u32, (height * ratio) as u32);
    // Setting a canvas's size, even to the same, drops its bitmap and makes
    // a new one: only when the grid's size changed.
    if (canvas.width(), canvas.height()) != (pixels_w, pixels_h) {
        canvas.set_width(pixels_w);
        canvas.set_height(pixels_h);
        let _ = canvas.set_attribute("style", &format!("height:{height}px"));
    }
    let Some(ctx) = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<CanvasRenderingContext2d>().ok())
    else {
        return;
    };
    let _ = ctx.set_transform(ratio, 0.0, 0.0, ratio, 0.0, 0.0);
    ctx.clear_rect(0.0, 0.0, width, height);
    let at = |i: usize| {
        (
            (i % columns) as f64 * (side + GAP),
            (i / columns) as f64 * (side + GAP),
        )
    };
    // The tiles by look (dimmed or not, colour): the canvas's state is set
    // once for each look, not once for each tile; a grid has a handful.
    let mut order: Vec<(bool, &str, usize)> = tiles
        .iter()
        .enumerate()
        .map(|(i, tile)| (tile.live, tile.colour.map_or(NO_VALUE, |c| c.css()), i))
        .collect();
    order.sort_unstable();
    let mut look = None;
    for &(live, css, i) in &order {
        if look != Some((live, css)) {
            look = Some((live, css));
            ctx.set_global_alpha(alpha(live));
            ctx.set_fill_style_str(css);
        }
        let (x, y) = at(i);
        ctx.fill_rect(x, y, side, side);
    }
    if side >= MIN_SIDE_FOR_TEXT {
        ctx.set_font(&format!("{}px sans-serif", (side * 0.36).round()));
        ctx.set_text_align("center");
        ctx.set_text_baseline("middle");
        ctx.set_fill_style_str("#111");
        let mut dimmed = None;
        for &(live, _, i) in &order {
            if dimmed != Some(live) {
                dimmed = Some(live);
                ctx.set_global_alpha(alpha(live));
            }
            let (x, y) = at(i);
            let text = tiles[i]
                .value
                .map_or_else(|| "·".to_owned(), |v| v.to_string());
            let _ = ctx.fill_text(&text, x + side / 2.0, y + side / 2.0);
        }
    }
    ctx.set_global_alpha(1.0);
}

/// A tile's opacity: full while its device is live, dimmed otherwise.
fn alpha(live: bool) -> f64 {
    if live {
        1.0
    } else {
        0.35
    }
}

/// The device grid.
#[function_component(Tiles)]
pub fn tiles(props: &TilesProps) -> Html {
    let canvas = use_node_ref();
    {
        let canvas = canvas.clone();
        use_effect_with(props.tiles.clone(), move |tiles| {
            if let Some(canvas) = canvas.cast::<HtmlCanvasElement>() {
                draw(&canvas, tiles);
            }
        });
    }
    let onmousemove = {
        let (tiles, prefix) = (props.tiles.clone(), props.prefix.clone());
        Callback::from(move |e: MouseEvent| {
            let Some(canvas) = e.target_dyn_into::<HtmlCanvasElement>() else {
                return;
            };
            let (side, columns) = layout(tiles.len(), f64::from(canvas.client_width()));
            let (col, row) = (
                (f64::from(e.offset_x()) / (side + GAP)) as usize,
                (f64::from(e.offset_y()) / (side + GAP)) as usize,
            );
            let index = row * columns + col;
            let title = match tiles.get(index) {
                Some(tile) if col < columns => format!(
                    "{}{}",
                    name_in(&prefix, index as u32),
                    tile.value.map(|v| format!(": {v}")).unwrap_or_default()
                ),
                _ => String::new(),
            };
            canvas.set_title(&title);
        })
    };
    html! {
        <section class="tiles" aria-label="devices">
            <canvas ref={canvas} id="r2-tiles" data-count={props.tiles.len().to_string()} {onmousemove} />
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_counts_get_smaller_tiles_and_every_row_fits() {
        assert_eq!(layout(60, 330.0), (30.0, 10));
        let (side, columns) = layout(2000, 1000.0);
        assert!(side < SIDE && columns * (side as usize + GAP as usize) <= 1003);
        assert_eq!(layout(5, 0.0).1, 1, "never zero columns");
    }
}
