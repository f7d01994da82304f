//! ZKTeco PUSH-protocol text through its readers; see
//! `facehub_fuzz::push_text` for the properties.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| facehub_fuzz::push_text::check(data));
