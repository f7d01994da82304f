//! Device-protocol text frames through the frame parser and the pure parts
//! of the commands; see `facehub_fuzz::device_frame` for the properties.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| facehub_fuzz::device_frame::check(data));
