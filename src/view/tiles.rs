//! The device grid on one canvas: a square per device, coloured by the last
//! value its signals brought back, dimmed while it is not live. A canvas
//! costs the same few draw calls per device whatever the count, where a DOM
//! grid of thousands of elements would be diffed four times a second.
//!
//! Only what changed is drawn again ([`plan`]): the tiles whose look or value
//! differ from what the canvas shows, the whole grid only when its geometry
//! changed (the count, the width, the pixel ratio). The width comes from a
//! `ResizeObserver`, not from reading the canvas's `clientWidth` at each draw,
//! which made the browser lay the page out inside the page's task (with 300
//! `taps` devices: 93 ms of 452 ms of the main thread's script in 12 s, and
//! `fillText` for every tile another 132 ms).
//! The device under the pointer is named in the canvas's title.
//!
//! # Layout
//!
//! - [`layout`], [`plan`]: the grid's geometry and what a draw repaints (pure).
//! - [`Canvas`]: the drawing, and what the canvas shows now.
//! - [`Tiles`]: the component, its observer detached when it goes.

use std::cell::RefCell;
use std::rc::Rc;

use r2_core::names::name_in;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ResizeObserver, ResizeObserverEntry};
use yew::prelude::*;

use crate::run::Tile;

/// A tile's side and the gap after it, CSS pixels.
const SIDE: f64 = 30.0;
const GAP: f64 = 3.0;
/// Below this side the values are left out (they would not be legible).
const MIN_SIDE_FOR_TEXT: f64 = 18.0;
/// A tile's colour before its device has a value.
const NO_VALUE: &str = "#2a3140";
/// The grid's width when no observer reports the canvas's.
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

/// What a grid is drawn for: its tile count, its width in CSS pixels and the
/// device pixel ratio. Any change redraws the whole grid.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Geometry {
    count: usize,
    width: f64,
    ratio: f64,
}

/// What one draw repaints.
#[derive(Debug, PartialEq)]
enum Redraw {
    /// The whole grid: nothing drawn yet, or its geometry changed.
    All,
    /// These tiles only (by index), in the order they are painted.
    Tiles(Vec<usize>),
}

/// What to repaint to show `next` at `geometry` on a canvas that shows
/// `shown` (its tiles and the geometry they were drawn for; `None` before the
/// first draw). The tiles are painted grouped by look, so the canvas's state
/// changes once per look.
fn plan(shown: Option<(&[Tile], Geometry)>, next: &[Tile], geometry: Geometry) -> Redraw {
    match shown {
        Some((shown, drawn_for)) if drawn_for == geometry && shown.len() == next.len() => {
            let changed = (0..next.len()).filter(|&i| shown[i] != next[i]);
            Redraw::Tiles(by_look(next, changed))
        }
        _ => Redraw::All,
    }
}

/// `indices` ordered by the look of their tile in `tiles` (dimmed or not,
/// colour), then by index.
fn by_look(tiles: &[Tile], indices: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut order: Vec<(bool, &str, usize)> = indices
        .map(|i| (tiles[i].live, look_css(&tiles[i]), i))
        .collect();
    order.sort_unstable();
    order.into_iter().map(|(_, _, i)| i).collect()
}

fn look_css(tile: &Tile) -> &'static str {
    tile.colour.map_or(NO_VALUE, |c| c.css())
}

/// The canvas and what it shows now.
#[derive(Default)]
struct Canvas {
    /// The canvas's layout width, CSS pixels: the observer's last report
    /// (0: none yet; [`FALLBACK_WIDTH`] when there is no observer).
    width: f64,
    /// The tiles as drawn, and the geometry they were drawn for.
    shown: Option<(Rc<Vec<Tile>>, Geometry)>,
    /// Tiles given before the width was known: drawn at the observer's
    /// first report.
    waiting: Option<Rc<Vec<Tile>>>,
}

impl Canvas {
    /// Shows `tiles` on `canvas`, repainting only what changed.
    fn show(&mut self, canvas: &HtmlCanvasElement, tiles: &Rc<Vec<Tile>>) {
        if self.width <= 0.0 {
            // Asking the canvas would lay the page out inside this task;
            // the observer reports after the frame's layout, before paint.
            self.waiting = Some(Rc::clone(tiles));
            return;
        }
        let width = self.width;
        let ratio = web_sys::window()
            .map_or(1.0, |w| w.device_pixel_ratio())
            .max(1.0);
        let geometry = Geometry {
            count: tiles.len(),
            width,
            ratio,
        };
        let shown = self.shown.as_ref().map(|(t, g)| (t.as_slice(), *g));
        let redraw = plan(shown, tiles, geometry);
        if draw(canvas, tiles, geometry, &redraw) {
            self.shown = Some((Rc::clone(tiles), geometry));
        }
    }

    /// The canvas's layout width changed to `width`: the grid is drawn again
    /// at that width.
    fn resized(&mut self, canvas: &HtmlCanvasElement, width: f64) {
        if width == self.width {
            return;
        }
        self.width = width;
        let tiles = self
            .waiting
            .take()
            .or_else(|| self.shown.take().map(|(t, _)| t));
        if let Some(tiles) = tiles {
            self.show(canvas, &tiles);
        }
    }
}

/// Paints `redraw` of `tiles` on `canvas` at `geometry`; false when the
/// canvas has no 2D context (nothing was drawn).
fn draw(canvas: &HtmlCanvasElement, tiles: &[Tile], geometry: Geometry, redraw: &Redraw) -> bool {
    let Geometry { width, ratio, .. } = geometry;
    let (side, columns) = layout(tiles.len(), width);
    let rows = tiles.len().div_ceil(columns).max(1);
    let height = rows as f64 * (side + GAP);
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
        return false;
    };
    let _ = ctx.set_transform(ratio, 0.0, 0.0, ratio, 0.0, 0.0);
    let at = |i: usize| {
        (
            (i % columns) as f64 * (side + GAP),
            (i / columns) as f64 * (side + GAP),
        )
    };
    let all;
    let order: &[usize] = match redraw {
        Redraw::All => {
            ctx.clear_rect(0.0, 0.0, width, height);
            all = by_look(tiles, 0..tiles.len());
            &all
        }
        Redraw::Tiles(order) => {
            for &i in order {
                let (x, y) = at(i);
                ctx.clear_rect(x, y, side, side);
            }
            order
        }
    };
    let mut look = None;
    for &i in order {
        let tile = &tiles[i];
        if look != Some((tile.live, look_css(tile))) {
            look = Some((tile.live, look_css(tile)));
            ctx.set_global_alpha(alpha(tile.live));
            ctx.set_fill_style_str(look_css(tile));
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
        for &i in order {
            let tile = &tiles[i];
            if dimmed != Some(tile.live) {
                dimmed = Some(tile.live);
                ctx.set_global_alpha(alpha(tile.live));
            }
            let (x, y) = at(i);
            let text = tile.value.map_or_else(|| "·".to_owned(), |v| v.to_string());
            // Held to its tile (a wide value is drawn narrower): a tile
            // repainted alone clears only its own square.
            let _ = ctx.fill_text_with_max_width(&text, x + side / 2.0, y + side / 2.0, side - 2.0);
        }
    }
    ctx.set_global_alpha(1.0);
    true
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
    let state = use_mut_ref(Canvas::default);
    {
        let (canvas, state) = (canvas.clone(), state.clone());
        use_effect_with(props.tiles.clone(), move |tiles| {
            if let Some(canvas) = canvas.cast::<HtmlCanvasElement>() {
                state.borrow_mut().show(&canvas, tiles);
            }
        });
    }
    {
        let (canvas, state) = (canvas.clone(), state.clone());
        use_effect_with((), move |()| {
            let element = canvas.cast::<HtmlCanvasElement>();
            let observer = element
                .clone()
                .and_then(|element| observe_width(element, state.clone()));
            if let (None, Some(element)) = (&observer, &element) {
                state.borrow_mut().resized(element, FALLBACK_WIDTH);
            }
            move || {
                if let Some((observer, _callback)) = observer {
                    observer.disconnect();
                }
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

/// The observer that tells `state` the canvas's layout width whenever it
/// changes (and once at first), with its callback: the caller keeps both and
/// disconnects the observer when the grid goes.
type WidthObserver = (ResizeObserver, Closure<dyn FnMut(js_sys::Array)>);

fn observe_width(canvas: HtmlCanvasElement, state: Rc<RefCell<Canvas>>) -> Option<WidthObserver> {
    let target = canvas.clone();
    let callback = Closure::<dyn FnMut(js_sys::Array)>::new(move |entries: js_sys::Array| {
        let width = entries
            .iter()
            .rev()
            .find_map(|e| e.dyn_into::<ResizeObserverEntry>().ok())
            .map(|e| e.content_rect().width());
        if let Some(width) = width.filter(|w| *w > 0.0) {
            state.borrow_mut().resized(&canvas, width);
        }
    });
    let observer = ResizeObserver::new(callback.as_ref().unchecked_ref()).ok()?;
    observer.observe(&target);
    Some((observer, callback))
}

#[cfg(test)]
mod tests {
    use super::*;
    use r2_core::colour::Colour;

    #[test]
    fn large_counts_get_smaller_tiles_and_every_row_fits() {
        assert_eq!(layout(60, 330.0), (30.0, 10));
        let (side, columns) = layout(2000, 1000.0);
        assert!(side < SIDE && columns * (side as usize + GAP as usize) <= 1003);
        assert_eq!(layout(5, 0.0).1, 1, "never zero columns");
    }

    fn tile(value: Option<i64>, colour: Option<Colour>, live: bool) -> Tile {
        Tile {
            value,
            colour,
            live,
        }
    }

    const AT_800: Geometry = Geometry {
        count: 4,
        width: 800.0,
        ratio: 1.0,
    };

    #[test]
    fn only_changed_tiles_are_repainted_grouped_by_look() {
        let shown = vec![tile(None, None, false); 4];
        let mut next = shown.clone();
        next[3] = tile(Some(7), Some(Colour::Red), true);
        next[1] = tile(Some(2), Some(Colour::Blue), true);
        next[2] = tile(None, None, true);
        // All three live, so by colour: Blue ("#2185d0"), no value
        // ("#2a3140"), Red ("#db2828").
        assert_eq!(
            plan(Some((&shown, AT_800)), &next, AT_800),
            Redraw::Tiles(vec![1, 2, 3])
        );
        next[1].live = false;
        assert_eq!(
            plan(Some((&shown, AT_800)), &next, AT_800),
            Redraw::Tiles(vec![1, 2, 3]),
            "dimmed first, then by colour"
        );
        next[3].live = false;
        assert_eq!(
            plan(Some((&shown, AT_800)), &next, AT_800),
            Redraw::Tiles(vec![1, 3, 2])
        );
        assert_eq!(
            plan(Some((&next, AT_800)), &next, AT_800),
            Redraw::Tiles(vec![]),
            "nothing changed, nothing painted"
        );
    }

    #[test]
    fn a_value_alone_changing_repaints_its_tile() {
        let shown = vec![tile(Some(1), Some(Colour::Green), true); 4];
        let mut next = shown.clone();
        next[0].value = Some(2);
        assert_eq!(
            plan(Some((&shown, AT_800)), &next, AT_800),
            Redraw::Tiles(vec![0])
        );
    }

    #[test]
    fn a_new_geometry_or_count_repaints_all() {
        let shown = vec![tile(None, None, true); 4];
        assert_eq!(plan(None, &shown, AT_800), Redraw::All, "first draw");
        let wider = Geometry {
            width: 900.0,
            ..AT_800
        };
        assert_eq!(plan(Some((&shown, AT_800)), &shown, wider), Redraw::All);
        let sharper = Geometry {
            ratio: 2.0,
            ..AT_800
        };
        assert_eq!(plan(Some((&shown, AT_800)), &shown, sharper), Redraw::All);
        let more = vec![tile(None, None, true); 5];
        let five = Geometry { count: 5, ..AT_800 };
        assert_eq!(plan(Some((&shown, AT_800)), &more, five), Redraw::All);
    }
}
