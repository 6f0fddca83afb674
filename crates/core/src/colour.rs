//! The IoT demo's colours: the sensor value (0..360) in five bands, as the
//! WebApp's `convert_colour` and graph page count them.

word_enum! {
    /// A colour band of the sensor value.
    pub enum Colour {
        Red = "red",
        Yellow = "yellow",
        Green = "green",
        Blue = "blue",
        Purple = "purple",
    }
}

impl Colour {
    /// The band of a sensor value: < 72 red, < 144 yellow, < 216 green,
    /// < 288 blue, else purple (NaN too, as in the WebApp).
    pub fn from_sensor(sensor: f64) -> Colour {
        if sensor < 72.0 {
            Colour::Red
        } else if sensor < 144.0 {
            Colour::Yellow
        } else if sensor < 216.0 {
            Colour::Green
        } else if sensor < 288.0 {
            Colour::Blue
        } else {
            Colour::Purple
        }
    }

    /// A CSS colour for the band (Fomantic UI's, which the WebApp uses).
    pub fn css(self) -> &'static str {
        match self {
            Colour::Red => "#db2828",
            Colour::Yellow => "#fbbd08",
            Colour::Green => "#21ba45",
            Colour::Blue => "#2185d0",
            Colour::Purple => "#a333c8",
        }
    }
}

impl From<i64> for Colour {
    fn from(sensor: i64) -> Colour {
        Colour::from_sensor(sensor as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_have_the_webapp_edges() {
        let edges = [72, 144, 216, 288];
        for (band, colour) in Colour::ALL.iter().enumerate() {
            let low = if band == 0 { -10 } else { edges[band - 1] };
            let high = edges.get(band).copied().unwrap_or(400);
            assert_eq!(Colour::from(low), *colour, "{low}");
            assert_eq!(Colour::from(high - 1), *colour, "{}", high - 1);
            assert_eq!(Colour::from_sensor(f64::from(high as i32) - 0.001), *colour);
        }
        assert_eq!(Colour::from_sensor(f64::NAN), Colour::Purple);
    }

    #[test]
    fn css_colours_are_distinct_hex() {
        let css: std::collections::BTreeSet<_> = Colour::ALL.iter().map(|c| c.css()).collect();
        assert_eq!(css.len(), Colour::ALL.len());
        assert!(css.iter().all(|c| c.len() == 7
            && c.starts_with('#')
            && c[1..].chars().all(|h| h.is_ascii_hexdigit())));
    }
}
