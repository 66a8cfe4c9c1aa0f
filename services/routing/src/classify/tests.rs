use super::*;

fn classifier() -> (Classifier, Policy) {
    let policy = Policy::default_policy();
    (Classifier::new(&policy), policy)
}

#[test]
fn chinese_and_english_texts_get_type_cause_and_evidence() {
    let (c, _) = classifier();
    let r = c.read("订单已经7天了还没发货，物流信息一直没更新");
    assert_eq!((r.type_code.as_str(), r.cause_code.as_str()), ("logistics", "delivery_delay"));
    assert!(r.evidence.iter().any(|e| e == "还没发货"), "{r:?}");
    assert!(r.confidence >= 0.6, "{r:?}");
    let r = c.read("I was charged twice for the same order, please refund the duplicate payment.");
    assert_eq!((r.type_code.as_str(), r.cause_code.as_str()), ("billing", "double_charge"));
    assert_eq!(r.request, CustomerRequestKind::Refund);
}

#[test]
fn a_vague_text_is_unclassified() {
    let (c, _) = classifier();
    let r = c.read("你好，在吗");
    assert_eq!(r.type_code, "");
    assert!(r.evidence.is_empty());
}

#[test]
fn a_safety_hazard_is_decisive_and_a_negated_one_is_not() {
    let (c, policy) = classifier();
    let stated = Stated { channel: "phone", type_code: "repair", cause_code: "hardware_damage", ..Default::default() };
    let cl = c.classify("洗衣机漏电，手一碰就麻", &stated, &policy);
    assert_eq!((cl.type_code.as_str(), cl.cause_code.as_str()), ("product_quality", "safety_hazard"));
    assert_eq!(cl.source, ClassificationSource::Rules as i32);
    let r = c.read("检查过了没有漏电，就是屏幕碎了");
    assert_ne!(r.cause_code, "safety_hazard", "{r:?}");
}

#[test]
fn a_stated_type_wins_only_on_trusted_channels_or_when_the_text_says_little() {
    let (c, policy) = classifier();
    let text = "同一笔订单信用卡被扣了两次款";
    let web = Stated { channel: "web", type_code: "logistics", ..Default::default() };
    let cl = c.classify(text, &web, &policy);
    assert_eq!(cl.type_code, "billing");
    assert_eq!(cl.source, ClassificationSource::Rules as i32);
    let phone = Stated { channel: "phone", type_code: "logistics", ..Default::default() };
    let cl = c.classify(text, &phone, &policy);
    assert_eq!((cl.type_code.as_str(), cl.source), ("logistics", ClassificationSource::Stated as i32));
    let vague = c.classify("你好，在吗", &web, &policy);
    assert_eq!(vague.type_code, "logistics");
}

#[test]
fn stated_nature_and_request_win_over_the_text() {
    let (c, policy) = classifier();
    let stated = Stated {
        channel: "web",
        nature: RequestNature::Complaint as i32,
        request: CustomerRequestKind::Repair as i32,
        ..Default::default()
    };
    let cl = c.classify("建议增加夜间模式", &stated, &policy);
    assert_eq!(cl.request_nature, RequestNature::Complaint as i32);
    assert_eq!(cl.request_kind, CustomerRequestKind::Repair as i32);
    let cl = c.classify("建议增加夜间模式", &Stated::default(), &policy);
    assert_eq!(cl.request_nature, RequestNature::Suggestion as i32);
    assert_eq!(cl.request_kind, CustomerRequestKind::FeatureChange as i32);
}

#[test]
fn labels_round_trip() {
    for n in NATURES {
        assert_eq!(nature_label(nature_of(n) as i32), n);
    }
    for r in REQUESTS {
        assert_eq!(request_label(request_of(r) as i32), r);
    }
}
