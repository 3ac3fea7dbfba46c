//! Completing CNAMEs whose target lies outside disco's zones.
