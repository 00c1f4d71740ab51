//! The language of everything an integration sends to DingTalk (ARCHITECTURE.md
//! §11), and the user templates of its alert messages.

use serde::{Deserialize, Serialize};

/// A supported language. API values stay English; only what people read changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Locale {
    /// Simplified Chinese: the default for new integrations.
    #[serde(rename = "zh-CN")]
    ZhCn,
    /// English: the stored default, so integrations made before locales keep it.
    #[default]
    #[serde(rename = "en-US")]
    EnUs,
}

impl Locale {
    /// The BCP 47 tag (`zh-CN`, `en-US`).
    pub fn tag(self) -> &'static str {
        match self {
            Self::ZhCn => "zh-CN",
            Self::EnUs => "en-US",
        }
    }

    /// The locale of a tag (`zh`, `zh-CN`, `zh-Hans`… are Chinese; `en…` English).
    pub fn parse(tag: &str) -> Option<Self> {
        let tag = tag.trim().to_ascii_lowercase();
        if tag == "zh" || tag.starts_with("zh-") || tag.starts_with("zh_") {
            Some(Self::ZhCn)
        } else if tag == "en" || tag.starts_with("en-") || tag.starts_with("en_") {
            Some(Self::EnUs)
        } else {
            None
        }
    }
}

/// An integration's own templates of its alert messages (minijinja); either may be
/// absent (the built-in text is used).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageTemplates {
    /// The title (the message's title, and the card's title).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The markdown body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl MessageTemplates {
    /// No template at all.
    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.body.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_variants_parse() {
        for locale in [Locale::ZhCn, Locale::EnUs] {
            assert_eq!(Locale::parse(locale.tag()), Some(locale));
            let json = serde_json::to_string(&locale).expect("json");
            assert_eq!(json, format!("\"{}\"", locale.tag()));
        }
        assert_eq!(Locale::parse("zh-Hans-CN"), Some(Locale::ZhCn));
        assert_eq!(Locale::parse("en"), Some(Locale::EnUs));
        assert_eq!(Locale::parse("fr-FR"), None);
        assert_eq!(Locale::default(), Locale::EnUs);
    }
}
