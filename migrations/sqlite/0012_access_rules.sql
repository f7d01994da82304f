-- Access rules (acs/v1/rule_external): who may open which terminal, and
-- when. A terminal bound to rules holds exactly the people of the rules
-- in force; one bound to none holds the whole tenant.
CREATE TABLE access_rules (
    -- The rule's number on the device protocol (`pass_rule_list[].id`,
    -- an int there); `rule_id` is its id on the API.
    number     INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused
    tenant_id  INTEGER NOT NULL REFERENCES tenants(id),
    rule_id    TEXT NOT NULL UNIQUE,
    spec       TEXT NOT NULL,            -- JSON: name, flags, valid days, windows
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX access_rules_tenant ON access_rules(tenant_id);

CREATE TABLE access_rule_people (
    rule_number INTEGER NOT NULL REFERENCES access_rules(number) ON DELETE CASCADE,
    person_id   INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    PRIMARY KEY (rule_number, person_id)
);
CREATE INDEX access_rule_people_person ON access_rule_people(person_id);

CREATE TABLE access_rule_devices (
    rule_number INTEGER NOT NULL REFERENCES access_rules(number) ON DELETE CASCADE,
    sn          TEXT NOT NULL REFERENCES devices(sn),
    PRIMARY KEY (rule_number, sn)
);
CREATE INDEX access_rule_devices_sn ON access_rule_devices(sn);

-- The rules in force for the terminal when its address book was last
-- worked out (JSON array of numbers); NULL: no rule bound, the whole
-- tenant. Changes to terminals are the difference to this.
ALTER TABLE devices ADD COLUMN access_rules TEXT;
-- When a rule bound to a terminal next starts or ends.
ALTER TABLE tenants ADD COLUMN access_due INTEGER;
