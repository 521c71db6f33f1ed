use super::*;

fn bdf(s: &str) -> Bdf {
    s.parse().unwrap()
}

const BRIDGE_ID: PciId = PciId {
    vendor: 0x8086,
    device: 0x244e,
};

fn ep(s: &str) -> FunctionConfig {
    FunctionConfig::endpoint(bdf(s), PciId::EDU)
}

fn br(s: &str, kind: FunctionKind, sec: u8, acs: bool) -> FunctionConfig {
    FunctionConfig {
        acs,
        ..FunctionConfig::bridge(bdf(s), BRIDGE_ID, kind, sec)
    }
}

fn mf(s: &str, acs: bool) -> FunctionConfig {
    FunctionConfig {
        multifunction: true,
        acs,
        ..ep(s)
    }
}

fn topo(functions: Vec<FunctionConfig>) -> Topology {
    Topology::new(TopologyConfig { functions }).unwrap()
}

fn err(functions: Vec<FunctionConfig>) -> TopologyError {
    Topology::new(TopologyConfig { functions }).unwrap_err()
}

/// Groups as lists of BDF strings, in group-id order.
fn groups(t: &Topology) -> Vec<Vec<String>> {
    t.groups()
        .iter()
        .map(|g| g.members.iter().map(|b| b.to_string()).collect())
        .collect()
}

fn same_group(t: &Topology, a: &str, b: &str) -> bool {
    t.group_of(bdf(a)).unwrap() == t.group_of(bdf(b)).unwrap()
}

#[test]
fn bdf_parse_display_and_requester_id() {
    let b = bdf("1e:1f.7");
    assert_eq!((b.bus(), b.device(), b.function()), (0x1e, 0x1f, 7));
    assert_eq!(b.to_string(), "1e:1f.7");
    assert_eq!(b.devfn(), 0xff);
    assert_eq!(b.requester_id(), RequesterId(0x1eff));
    assert_eq!(b.requester_id().bdf(), b);
    for bad in ["00:20.0", "00:00.8", "0:0", "000:00.0", "zz:00.0", "00:00.", ""] {
        assert_eq!(
            bad.parse::<Bdf>(),
            Err(TopologyError::BadBdf(bad.to_owned())),
            "{bad}"
        );
    }
    assert_eq!(Bdf::new(0, 32, 0), None);
    assert_eq!("1234:11e8".parse::<PciId>(), Ok(PciId::EDU));
    assert_eq!(PciId::EDU.to_string(), "1234:11e8");
    for bad in ["1234", "12345:11e8", "xyzw:11e8", "1234:11e"] {
        assert_eq!(
            bad.parse::<PciId>(),
            Err(TopologyError::BadPciId(bad.to_owned())),
            "{bad}"
        );
    }
}

#[test]
fn default_host_is_one_edu_device_in_one_group() {
    let t = Topology::default();
    let fns: Vec<_> = t.functions().collect();
    assert_eq!(fns.len(), 1);
    assert_eq!(fns[0].id, PciId::EDU);
    assert_eq!(fns[0].bdf, bdf("00:02.0"));
    assert_eq!(fns[0].kind, FunctionKind::Endpoint);
    assert_eq!(groups(&t), vec![vec!["00:02.0"]]);
    assert_eq!(t.group_of(bdf("00:02.0")), Some(GroupId(0)));
    assert_eq!(t.group(GroupId(0)).unwrap().members, vec![bdf("00:02.0")]);
    assert_eq!(t.group_of(bdf("00:03.0")), None);
    assert_eq!(
        t.dma_requester_id(bdf("00:02.0")),
        Some(bdf("00:02.0").requester_id())
    );
}

#[test]
fn json_round_trip_and_hand_written_config() {
    let cfg = TopologyConfig::default();
    assert_eq!(TopologyConfig::from_json(&cfg.to_json()).unwrap(), cfg);
    let json = r#"{ "functions": [
        { "bdf": "00:1c.0", "id": "8086:a110", "kind": "root_port", "secondary_bus": 1, "acs": true },
        { "bdf": "01:00.0", "id": "1234:11e8", "kind": "endpoint" }
    ] }"#;
    let t = Topology::from_json(json).unwrap();
    assert_eq!(groups(&t), vec![vec!["00:1c.0"], vec!["01:00.0"]]);
    assert_eq!(t.upstream_bridge(bdf("01:00.0")), Some(bdf("00:1c.0")));
    assert_eq!(t.function(bdf("00:1c.0")).unwrap().secondary_bus, Some(1));
}

#[test]
fn devices_behind_a_conventional_pci_bridge_share_a_group_aliased_to_the_bridge() {
    let t = topo(vec![
        ep("00:02.0"),
        br("00:1e.0", FunctionKind::PciBridge, 5, false),
        ep("05:00.0"),
        ep("05:01.0"),
    ]);
    assert_eq!(
        groups(&t),
        vec![vec!["00:02.0"], vec!["00:1e.0", "05:00.0", "05:01.0"]]
    );
    let bridge_rid = bdf("00:1e.0").requester_id();
    assert_eq!(t.dma_requester_id(bdf("05:00.0")), Some(bridge_rid));
    assert_eq!(t.dma_requester_id(bdf("05:01.0")), Some(bridge_rid));
    assert_eq!(
        t.dma_aliases(bdf("05:01.0")),
        vec![
            (bdf("05:01.0"), bdf("05:01.0").requester_id()),
            (bdf("00:1e.0"), bridge_rid)
        ]
    );
    assert!(t.dma_aliases(bdf("07:00.0")).is_empty());
}

#[test]
fn pcie_to_pci_bridge_aliases_as_secondary_bus_device_zero() {
    // Even below a root port with ACS, the bridge's subordinates cannot be told apart.
    let t = topo(vec![
        br("00:1c.0", FunctionKind::RootPort, 1, true),
        br("01:00.0", FunctionKind::PcieToPciBridge, 2, false),
        ep("02:03.0"),
        ep("02:04.0"),
    ]);
    assert_eq!(
        groups(&t),
        vec![vec!["00:1c.0"], vec!["01:00.0", "02:03.0", "02:04.0"]]
    );
    assert_eq!(
        t.dma_requester_id(bdf("02:04.0")),
        Some(bdf("02:00.0").requester_id())
    );
    // A conventional bridge below the PCIe-to-PCI bridge: its own id, then the PCIe-to-PCI alias.
    let t = topo(vec![
        br("00:1c.0", FunctionKind::RootPort, 1, true),
        br("01:00.0", FunctionKind::PcieToPciBridge, 2, false),
        br("02:01.0", FunctionKind::PciBridge, 3, false),
        ep("03:00.0"),
    ]);
    let aliases: Vec<RequesterId> = t
        .dma_aliases(bdf("03:00.0"))
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(
        aliases,
        vec![
            bdf("03:00.0").requester_id(),
            bdf("02:01.0").requester_id(),
            bdf("02:00.0").requester_id()
        ]
    );
    assert!(same_group(&t, "03:00.0", "01:00.0"));
}

#[test]
fn multifunction_without_acs_shares_a_group() {
    let t = topo(vec![mf("00:03.0", false), mf("00:03.1", false), ep("00:04.0")]);
    assert_eq!(groups(&t), vec![vec!["00:03.0", "00:03.1"], vec!["00:04.0"]]);
}

#[test]
fn multifunction_with_acs_is_isolated() {
    let t = topo(vec![mf("00:03.0", true), mf("00:03.1", true)]);
    assert_eq!(groups(&t), vec![vec!["00:03.0"], vec!["00:03.1"]]);
    // Only functions that lack ACS are pooled: the one with ACS stays alone.
    let t = topo(vec![
        mf("00:03.0", true),
        mf("00:03.1", false),
        mf("00:03.2", false),
    ]);
    assert_eq!(groups(&t), vec![vec!["00:03.0"], vec!["00:03.1", "00:03.2"]]);
}

fn switch(dsp_acs: bool, rp_acs: bool) -> Topology {
    topo(vec![
        br("00:01.0", FunctionKind::RootPort, 1, rp_acs),
        br("01:00.0", FunctionKind::UpstreamPort, 2, false),
        br("02:00.0", FunctionKind::DownstreamPort, 3, dsp_acs),
        br("02:01.0", FunctionKind::DownstreamPort, 4, dsp_acs),
        mf("03:00.0", true),
        mf("03:00.1", true),
        ep("04:00.0"),
    ])
}

#[test]
fn switch_with_acs_on_downstream_ports_isolates_every_function() {
    let t = switch(true, true);
    assert_eq!(t.groups().len(), 7);
    assert!(t.groups().iter().all(|g| g.members.len() == 1));
    assert_eq!(
        t.dma_requester_id(bdf("04:00.0")),
        Some(bdf("04:00.0").requester_id())
    );
}

#[test]
fn switch_without_acs_on_downstream_ports_groups_each_port_with_its_devices() {
    let t = switch(false, true);
    assert_eq!(
        groups(&t),
        vec![
            vec!["00:01.0"],
            vec!["01:00.0"],
            vec!["02:00.0", "03:00.0", "03:00.1"],
            vec!["02:01.0", "04:00.0"]
        ]
    );
    // The functions of 03:00 have ACS but are not protected from each other by their port.
    assert!(same_group(&t, "03:00.0", "03:00.1"));
    // Classic pci_device_group(): devices under different downstream ports stay apart.
    assert!(!same_group(&t, "03:00.0", "04:00.0"));
}

#[test]
fn root_port_without_acs_pulls_the_whole_hierarchy_into_its_group() {
    for dsp_acs in [false, true] {
        let t = switch(dsp_acs, false);
        assert_eq!(t.groups().len(), 1, "dsp_acs={dsp_acs}");
        assert_eq!(t.groups()[0].members.len(), 7);
    }
}

#[test]
fn group_ids_follow_the_lowest_bdf() {
    let t = topo(vec![
        ep("00:09.0"),
        br("00:1e.0", FunctionKind::PciBridge, 5, false),
        ep("05:00.0"),
        ep("00:01.0"),
    ]);
    assert_eq!(
        groups(&t),
        vec![vec!["00:01.0"], vec!["00:09.0"], vec!["00:1e.0", "05:00.0"]]
    );
    for g in t.groups() {
        for m in &g.members {
            assert_eq!(t.group_of(*m), Some(g.id));
        }
    }
    assert_eq!(t.group_of(bdf("05:00.0")), Some(GroupId(2)));
}

#[test]
fn parse_errors() {
    assert!(matches!(Topology::from_json("{"), Err(TopologyError::Parse(_))));
    assert!(matches!(
        Topology::from_json(r#"{"functions": [], "extra": 1}"#),
        Err(TopologyError::Parse(_))
    ));
    let bad_bdf = r#"{"functions": [{"bdf": "00:20.0", "id": "1234:11e8", "kind": "endpoint"}]}"#;
    match Topology::from_json(bad_bdf) {
        Err(TopologyError::Parse(m)) => assert!(m.contains("bad PCI address"), "{m}"),
        other => panic!("{other:?}"),
    }
    let bad_id = r#"{"functions": [{"bdf": "00:02.0", "id": "1234", "kind": "endpoint"}]}"#;
    match Topology::from_json(bad_id) {
        Err(TopologyError::Parse(m)) => assert!(m.contains("bad PCI id"), "{m}"),
        other => panic!("{other:?}"),
    }
    let bad_kind = r#"{"functions": [{"bdf": "00:02.0", "id": "1234:11e8", "kind": "gpu"}]}"#;
    assert!(matches!(
        Topology::from_json(bad_kind),
        Err(TopologyError::Parse(_))
    ));
    // An empty host is valid.
    assert!(
        Topology::from_json(r#"{"functions": []}"#)
            .unwrap()
            .groups()
            .is_empty()
    );
}

#[test]
fn duplicate_bdf() {
    let e = err(vec![ep("00:02.0"), ep("00:02.0")]);
    assert_eq!(e, TopologyError::DuplicateBdf(bdf("00:02.0")));
    assert_eq!(e.to_string(), "two functions at 00:02.0");
}

#[test]
fn device_on_a_bus_no_bridge_provides() {
    let e = err(vec![
        br("00:1c.0", FunctionKind::RootPort, 1, true),
        ep("02:00.0"),
    ]);
    assert_eq!(
        e,
        TopologyError::UnknownBus {
            bdf: bdf("02:00.0"),
            bus: 2
        }
    );
    assert_eq!(e.to_string(), "02:00.0 sits on bus 02, which no bridge provides");
}

#[test]
fn secondary_bus_errors() {
    let mut no_sec = br("00:1c.0", FunctionKind::RootPort, 1, true);
    no_sec.secondary_bus = None;
    assert_eq!(
        err(vec![no_sec]),
        TopologyError::MissingSecondaryBus {
            bdf: bdf("00:1c.0"),
            kind: FunctionKind::RootPort
        }
    );
    let mut ep_sec = ep("00:02.0");
    ep_sec.secondary_bus = Some(3);
    assert_eq!(
        err(vec![ep_sec]),
        TopologyError::UnexpectedSecondaryBus(bdf("00:02.0"))
    );
    assert_eq!(
        err(vec![br("00:1c.0", FunctionKind::RootPort, 0, true)]),
        TopologyError::SecondaryIsRootBus(bdf("00:1c.0"))
    );
    assert_eq!(
        err(vec![
            br("00:1c.0", FunctionKind::RootPort, 1, true),
            br("00:1d.0", FunctionKind::RootPort, 1, true)
        ]),
        TopologyError::DuplicateSecondaryBus {
            bus: 1,
            first: bdf("00:1c.0"),
            second: bdf("00:1d.0")
        }
    );
}

#[test]
fn bus_loops() {
    assert_eq!(
        err(vec![br("01:00.0", FunctionKind::PciBridge, 1, false)]),
        TopologyError::BusLoop(1)
    );
    let e = err(vec![
        br("01:00.0", FunctionKind::PciBridge, 2, false),
        br("02:00.0", FunctionKind::PciBridge, 1, false),
    ]);
    assert!(matches!(e, TopologyError::BusLoop(1 | 2)), "{e:?}");
}

#[test]
fn misplaced_ports() {
    let cases = [
        // A root port below another root port.
        (
            vec![
                br("00:1c.0", FunctionKind::RootPort, 1, true),
                br("01:00.0", FunctionKind::RootPort, 2, true),
            ],
            "01:00.0",
            FunctionKind::RootPort,
            "below a root port",
        ),
        // An upstream port on the root bus.
        (
            vec![br("00:01.0", FunctionKind::UpstreamPort, 1, false)],
            "00:01.0",
            FunctionKind::UpstreamPort,
            "on the root bus",
        ),
        // A downstream port below a root port.
        (
            vec![
                br("00:1c.0", FunctionKind::RootPort, 1, true),
                br("01:00.0", FunctionKind::DownstreamPort, 2, true),
            ],
            "01:00.0",
            FunctionKind::DownstreamPort,
            "below a root port",
        ),
        // An endpoint on a switch's internal bus.
        (
            vec![
                br("00:1c.0", FunctionKind::RootPort, 1, true),
                br("01:00.0", FunctionKind::UpstreamPort, 2, false),
                ep("02:00.0"),
            ],
            "02:00.0",
            FunctionKind::Endpoint,
            "below an upstream port",
        ),
    ];
    for (fns, at, kind, place) in cases {
        assert_eq!(
            err(fns),
            TopologyError::MisplacedPort {
                bdf: bdf(at),
                kind,
                place: place.to_owned()
            }
        );
    }
    let e = err(vec![br("00:01.0", FunctionKind::UpstreamPort, 1, false)]);
    assert_eq!(
        e.to_string(),
        "00:01.0: an upstream port cannot sit on the root bus"
    );
}

#[test]
fn only_device_zero_below_a_pcie_port() {
    let e = err(vec![
        br("00:1c.0", FunctionKind::RootPort, 1, true),
        ep("01:01.0"),
    ]);
    assert_eq!(
        e,
        TopologyError::NotDeviceZeroBelowPort {
            bdf: bdf("01:01.0"),
            port: bdf("00:1c.0"),
            port_kind: FunctionKind::RootPort
        }
    );
    // A conventional bus may hold many devices.
    topo(vec![
        br("00:1e.0", FunctionKind::PciBridge, 1, false),
        ep("01:01.0"),
        ep("01:1f.0"),
    ]);
}

#[test]
fn functions_other_than_zero_need_a_multifunction_function_zero() {
    assert_eq!(
        err(vec![ep("00:03.1")]),
        TopologyError::MissingFunctionZero(bdf("00:03.1"))
    );
    assert_eq!(
        err(vec![ep("00:03.0"), ep("00:03.1")]),
        TopologyError::NotMultifunction { bdf: bdf("00:03.1") }
    );
    assert!(
        err(vec![ep("00:03.0"), ep("00:03.1")])
            .to_string()
            .contains("not multifunction")
    );
}
