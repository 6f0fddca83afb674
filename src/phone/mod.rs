//! Device mode (`?device`): this browser — a real phone — becomes one device
//! of the run, as the IoT WebApp's sensor page is.

use yew::prelude::*;

#[function_component(Phone)]
pub fn phone() -> Html {
    html! { <main class="r2 phone"><h1>{ "r2-stress device mode" }</h1></main> }
}
