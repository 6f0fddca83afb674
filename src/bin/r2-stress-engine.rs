//! The run engine's Web Worker: Trunk builds it beside the page
//! (`index.html`), and the page starts it for each run (`engine::Engine`).

fn main() {
    r2_stress::engine::register();
}
