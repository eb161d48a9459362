//! Message content from a dialect's parts, whatever the dialect: text and images in order,
//! adjacent texts joined, `data:` URLs unpacked into inline bytes (one canonical form for
//! plugins), and the image checks every dialect promises its clients: a URL the vendor can
//! fetch, a media type vendors accept, well-formed base64.

use base64::Engine;

use super::Error;
use crate::runtime::types::{ContentPart, Image, ImageData, Message, Role};

/// A message of `parts` in order; adjacent text parts are joined by a newline, as the dialects
/// joined them before images were passed on.
pub fn message(role: Role, parts: impl IntoIterator<Item = ContentPart>) -> Message {
    let mut content: Vec<ContentPart> = Vec::new();
    for part in parts {
        match (content.last_mut(), part) {
            (Some(ContentPart::Text(text)), ContentPart::Text(more)) => {
                text.push('\n');
                text.push_str(&more);
            }
            (_, part) => content.push(part),
        }
    }
    if content.is_empty() {
        content.push(ContentPart::Text(String::new()));
    }
    Message { content, ..Message::text(role, "") }
}

/// The image media types the vendors behind our plugins all accept.
pub const MEDIA_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// An image given by URL: a `data:<media type>;base64,<data>` URL becomes inline bytes, any
/// other URL stays a URL (checked later by [`check`]).
pub fn from_url(url: &str) -> Image {
    let inline = url.strip_prefix("data:").and_then(|rest| rest.split_once(";base64,"));
    match inline {
        Some((media_type, data)) => {
            Image::Base64(ImageData { media_type: media_type.to_string(), data: data.to_string() })
        }
        None => Image::Url(url.to_string()),
    }
}

/// Refuses an image no vendor could use: a URL that is not `http(s)`, a media type outside
/// [`MEDIA_TYPES`], or data that is not standard base64.
pub fn check(image: &Image) -> Result<(), Error> {
    match image {
        Image::Url(url) => {
            let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
            if !matches!(scheme.as_deref(), Some("http" | "https")) {
                return Err(Error::InvalidParameter(
                    "an image URL must be http(s) or a data:<media type>;base64, URL".into(),
                ));
            }
        }
        Image::Base64(data) => {
            if !MEDIA_TYPES.contains(&data.media_type.as_str()) {
                return Err(Error::InvalidParameter(format!(
                    "image media type {:?} is not supported; use one of {}",
                    data.media_type,
                    MEDIA_TYPES.join(", ")
                )));
            }
            if data.data.is_empty() || base64::engine::general_purpose::STANDARD.decode(&data.data).is_err() {
                return Err(Error::InvalidParameter("image data is not valid base64".into()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts around an image stay in order; adjacent texts are joined.
    #[test]
    fn parts_keep_their_order() {
        let image = from_url("https://example.com/cat.jpg");
        let parts = [
            ContentPart::Text("a".into()),
            ContentPart::Text("b".into()),
            ContentPart::Image(image.clone()),
            ContentPart::Text("c".into()),
        ];
        let message = message(Role::User, parts);
        let expected = [ContentPart::Text("a\nb".into()), ContentPart::Image(image), ContentPart::Text("c".into())];
        assert_eq!(format!("{:?}", message.content), format!("{expected:?}"));
        assert_eq!(super::message(Role::User, []).plain_text(), "");
    }

    /// Data URLs become inline bytes; http(s) URLs stay; bad schemes, types and data are refused.
    #[test]
    fn urls_and_checks() {
        let png = from_url("data:image/png;base64,iVBORw0KGgo=");
        let Image::Base64(data) = &png else { panic!("a data URL is inline bytes: {png:?}") };
        assert_eq!((data.media_type.as_str(), data.data.as_str()), ("image/png", "iVBORw0KGgo="));
        assert!(check(&png).is_ok());
        assert!(check(&from_url("https://example.com/cat.jpg")).is_ok());
        assert!(check(&from_url("file:///etc/passwd")).is_err());
        assert!(check(&from_url("data:image/tiff;base64,AAAA")).is_err());
        assert!(check(&from_url("data:image/png;base64,not base64!")).is_err());
    }
}
