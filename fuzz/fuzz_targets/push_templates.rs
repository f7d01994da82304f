//! ZKTeco PUSH-protocol template uploads and options reports through their
//! readers; see `facehub_fuzz::push_templates` for the properties.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| facehub_fuzz::push_templates::check(data));
