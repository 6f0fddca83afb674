//! Small text helpers shared by the other modules: enums named by fixed words
//! (the `word_enum!` macro and its parse error [`UnknownWord`]) and
//! [`excerpt`], a short, char-safe preview of a long text for error messages.

/// A word that names none of an enum's variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not one of {}", allowed.join("|"))]
pub struct UnknownWord {
    pub value: String,
    pub allowed: &'static [&'static str],
}

/// Defines a field-less enum whose variants are named by fixed words:
/// `as_str`, `ALL`, `WORDS`, `Display`, `FromStr` (error [`UnknownWord`]) and
/// serde as those words.
macro_rules! word_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $word:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $word)] $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The words naming the variants, in declaration order.
            pub const WORDS: &'static [&'static str] = &[$($word),+];

            /// The word naming this variant.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::text::UnknownWord;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err($crate::text::UnknownWord {
                        value: s.to_owned(),
                        allowed: Self::WORDS,
                    }),
                }
            }
        }
    };
}

/// At most `max_chars` characters of `text` (cut on a char boundary), with
/// `…` appended when something was cut.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    word_enum! {
        #[derive(Default)]
        enum Sample {
            #[default]
            One = "one",
            TwoWords = "two-words",
        }
    }

    #[test]
    fn words_round_trip_and_unknown_words_are_refused() {
        for v in Sample::ALL {
            assert_eq!(v.as_str().parse::<Sample>(), Ok(*v));
            assert_eq!(v.to_string(), v.as_str());
            let json = serde_json::to_string(v).expect("serializes");
            assert_eq!(json, format!("\"{}\"", v.as_str()));
            assert_eq!(serde_json::from_str::<Sample>(&json).ok(), Some(*v));
        }
        assert_eq!(Sample::default(), Sample::One);
        let err = "One".parse::<Sample>().expect_err("case matters");
        assert_eq!(err.to_string(), "\"One\" is not one of one|two-words");
    }

    #[test]
    fn excerpt_cuts_on_char_boundaries() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("ééééé", 2), "éé…");
        assert_eq!(excerpt("", 0), "");
    }
}
