//! PLACEHOLDER (node engineer replaces)
