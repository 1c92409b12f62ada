//! Scenario files: YAML → `Scenario` (with spans for errors) → validated `plan::Plan`.
