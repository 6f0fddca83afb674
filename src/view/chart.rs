//! Small SVG charts drawn from the run's 1-second buckets: a line chart with
//! one or more series over time, and a bar chart for the latency histogram.
//! No chart library: a few `<polyline>`s and `<rect>`s are all it takes.

use yew::prelude::*;

/// Chart size in SVG user units; the SVG scales to its container.
const W: f64 = 320.0;
const H: f64 = 120.0;
const PAD_LEFT: f64 = 34.0;
const PAD_BOTTOM: f64 = 14.0;

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub label: &'static str,
    pub colour: &'static str,
    pub points: Vec<(f64, f64)>,
}

#[derive(Properties, PartialEq)]
pub struct LineChartProps {
    pub title: AttrValue,
    pub unit: AttrValue,
    pub lines: Vec<Line>,
}

/// A round upper bound for an axis (1, 2 or 5 times a power of ten).
pub fn nice_ceiling(max: f64) -> f64 {
    if !(max.is_finite()) || max <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * power)
}

/// Lines over time (x in seconds).
#[function_component(LineChart)]
pub fn line_chart(props: &LineChartProps) -> Html {
    let x_max = props
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let y_max = nice_ceiling(
        props
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let sx = |x: f64| PAD_LEFT + x / x_max * (W - PAD_LEFT - 4.0);
    let sy = |y: f64| (H - PAD_BOTTOM) - y / y_max * (H - PAD_BOTTOM - 6.0);
    html! {
        <figure class="chart">
            <figcaption>
                { props.title.clone() }
                { for props.lines.iter().map(|l| html! { <span class="key" style={format!("color:{}", l.colour)}>{ format!(" ● {}", l.label) }</span> }) }
            </figcaption>
            <svg viewBox={format!("0 0 {W} {H}")} role="img" aria-label={props.title.clone()}>
                <line x1={PAD_LEFT.to_string()} y1={sy(0.0).to_string()} x2={W.to_string()} y2={sy(0.0).to_string()} class="axis" />
                <line x1={PAD_LEFT.to_string()} y1={sy(y_max).to_string()} x2={W.to_string()} y2={sy(y_max).to_string()} class="grid" />
                <text x="2" y={(sy(y_max) + 4.0).to_string()} class="tick">{ format!("{} {}", fmt(y_max), props.unit) }</text>
                <text x="2" y={(sy(0.0)).to_string()} class="tick">{ "0" }</text>
                <text x={(W - 30.0).to_string()} y={(H - 2.0).to_string()} class="tick">{ format!("{x_max:.0} s") }</text>
                { for props.lines.iter().map(|l| {
                    let points = l.points.iter().map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y))).collect::<Vec<_>>().join(" ");
                    html! { <polyline points={points} fill="none" stroke={l.colour} stroke-width="1.5" /> }
                }) }
            </svg>
        </figure>
    }
}

#[derive(Properties, PartialEq)]
pub struct BarChartProps {
    pub title: AttrValue,
    /// (bucket label, count), in order.
    pub bars: Vec<(String, u64)>,
}

/// Counts per bucket, e.g. a latency histogram.
#[function_component(BarChart)]
pub fn bar_chart(props: &BarChartProps) -> Html {
    let n = props.bars.len().max(1) as f64;
    let y_max = nice_ceiling(props.bars.iter().map(|b| b.1 as f64).fold(0.0, f64::max));
    let width = (W - PAD_LEFT) / n;
    html! {
        <figure class="chart">
            <figcaption>{ props.title.clone() }</figcaption>
            <svg viewBox={format!("0 0 {W} {H}")} role="img" aria-label={props.title.clone()}>
                <text x="2" y="10" class="tick">{ fmt(y_max) }</text>
                { for props.bars.iter().enumerate().map(|(i, (label, count))| {
                    let h = *count as f64 / y_max * (H - PAD_BOTTOM - 6.0);
                    let x = PAD_LEFT + i as f64 * width;
                    html! { <g>
                        <rect x={format!("{:.1}", x + 1.0)} y={format!("{:.1}", H - PAD_BOTTOM - h)} width={format!("{:.1}", (width - 2.0).max(1.0))} height={format!("{h:.1}")} class="bar"><title>{ format!("{label}: {count}") }</title></rect>
                        if i % 2 == 0 { <text x={format!("{x:.1}")} y={(H - 2.0).to_string()} class="tick">{ label.clone() }</text> }
                    </g> }
                }) }
            </svg>
        </figure>
    }
}

fn fmt(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::nice_ceiling;

    #[test]
    fn axis_ceilings_are_round_and_cover_the_maximum() {
        for max in [0.3, 1.0, 1.1, 7.0, 19.0, 250.0, 999.0, 12_345.0] {
            let top = nice_ceiling(max);
            assert!(top >= max, "{top} < {max}");
            let mantissa = top / 10f64.powf(top.log10().floor());
            assert!(
                [1.0, 2.0, 5.0].iter().any(|m| (m - mantissa).abs() < 1e-9),
                "{top}"
            );
        }
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
    }
}
