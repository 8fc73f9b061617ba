//! The collector commands are listed twice, by plugin-api (what a handler may ask for, checked
//! by the host) and by bonnie-core (what a collector serves, `[collector] commands`), since the
//! dealer and the collector must not link the plugin interface. The two lists must be one.

#[test]
fn what_handlers_may_ask_for_is_what_a_collector_serves() {
    assert_eq!(
        bonnie_plugin_api::handler::COLLECTOR_COMMANDS,
        bonnie_core::config::COLLECTOR_COMMANDS
    );
}
