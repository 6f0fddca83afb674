//! Entry point of the page: mounts the Yew app on `<body>`.

fn main() {
    yew::Renderer::<r2_stress::app::Root>::new().render();
}
