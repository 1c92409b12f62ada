//! The binary as a new user meets it: `validate`, the README's examples, the first hour.
mod first_hour;
mod readme;
mod validate;
