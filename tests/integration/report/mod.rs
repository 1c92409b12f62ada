//! Report formats (insta snapshots in `report/snapshots/`), the HTML report, the JSON schema.
mod formats;
mod html;
mod schema;
