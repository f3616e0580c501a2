//! Message templates: the built-in ones the journeys plugin uses, in English and
//! Simplified Chinese, which a shop may override per locale; rendered with minijinja.
//!
//! A template sees `customer` (first_name, email), `shop` (name, url), `data` (the
//! message's data), `unsubscribe_url`, `cart_url` (the shop's cart, tracked) and the
//! function `track(url)`, which makes a click-tracked link.

use minijinja::Environment;

use crate::store::customers::InvalidInput;

/// The templates journeys may name.
pub const NAMES: [&str; 12] = [
    "welcome_1",
    "welcome_2",
    "welcome_3",
    "cart_reminder_1",
    "cart_reminder_2",
    "browse_reminder",
    "birthday",
    "replenishment",
    "winback_1",
    "winback_2",
    "winback_3",
    "review_request",
];

/// The locales templates come in.
pub const LOCALES: [&str; 2] = ["en", "zh-CN"];

/// The template locale for a shop's locale: Chinese for any `zh…`, else English.
pub fn locale_for(shop_locale: &str) -> &'static str {
    if shop_locale.to_ascii_lowercase().starts_with("zh") { "zh-CN" } else { "en" }
}

const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

struct Builtin {
    name: &'static str,
    /// The expression of the message's main link.
    link: &'static str,
    en: (&'static str, &'static str),
    zh: (&'static str, &'static str),
}

const COUPON_EN: &str = "{% if data.coupon %} Use code {{ data.coupon }} at checkout.{% endif %}";
const COUPON_ZH: &str = "{% if data.coupon %}结账时使用优惠码 {{ data.coupon }}。{% endif %}";

const BUILTINS: [Builtin; 12] = [
    Builtin {
        name: "welcome_1",
        link: "track(shop.url)",
        en: ("Welcome to {{ shop.name }}", "Thanks for joining {{ shop.name }}. We are glad you are here."),
        zh: ("欢迎来到 {{ shop.name }}", "感谢您加入 {{ shop.name }}，很高兴见到您。"),
    },
    Builtin {
        name: "welcome_2",
        link: "track(shop.url)",
        en: ("Getting the most from {{ shop.name }}", "Here is what our customers love most at {{ shop.name }}."),
        zh: ("在 {{ shop.name }} 发现更多", "看看其他顾客在 {{ shop.name }} 最喜欢什么。"),
    },
    Builtin {
        name: "welcome_3",
        link: "track(shop.url)",
        en: ("A welcome gift from {{ shop.name }}", "A small thank-you for being with us."),
        zh: ("{{ shop.name }} 送您一份见面礼", "感谢您的关注，送上一份小礼物。"),
    },
    Builtin {
        name: "cart_reminder_1",
        link: "cart_url",
        en: ("You left something in your cart", "Your cart at {{ shop.name }} is waiting for you."),
        zh: ("您的购物车里还有商品", "您在 {{ shop.name }} 的购物车还在等您。"),
    },
    Builtin {
        name: "cart_reminder_2",
        link: "cart_url",
        en: ("Still thinking it over?", "Your cart is still saved, but items may sell out."),
        zh: ("还在考虑吗？", "购物车已为您保存，但商品可能很快售罄。"),
    },
    Builtin {
        name: "browse_reminder",
        link: "track(data.product_url or shop.url)",
        en: ("Still interested?", "You had a look at {{ data.product_title or \"something\" }} at {{ shop.name }}."),
        zh: ("还感兴趣吗？", "您在 {{ shop.name }} 浏览过 {{ data.product_title or \"一件商品\" }}。"),
    },
    Builtin {
        name: "birthday",
        link: "track(shop.url)",
        en: ("Happy birthday from {{ shop.name }}", "Happy birthday! We have a gift for you."),
        zh: ("{{ shop.name }} 祝您生日快乐", "生日快乐！我们为您准备了一份礼物。"),
    },
    Builtin {
        name: "replenishment",
        link: "track(data.product_url or shop.url)",
        en: ("Time to restock?", "Running low on {{ data.product_title or \"your favourite\" }}? Reorder in a click."),
        zh: ("该补货了吗？", "{{ data.product_title or \"您常买的商品\" }} 快用完了吗？一键再次购买。"),
    },
    Builtin {
        name: "winback_1",
        link: "track(shop.url)",
        en: ("We miss you at {{ shop.name }}", "It has been a while. Here is what is new."),
        zh: ("{{ shop.name }} 想念您", "好久不见，来看看我们的新品吧。"),
    },
    Builtin {
        name: "winback_2",
        link: "track(shop.url)",
        en: ("Something special to welcome you back", "Come back and enjoy a little extra."),
        zh: ("欢迎回来，专属优惠", "回来看看，为您准备了专属优惠。"),
    },
    Builtin {
        name: "winback_3",
        link: "track(shop.url)",
        en: ("Our best offer, just for you", "This is our best offer, and it will not last."),
        zh: ("为您准备的最大优惠", "这是我们最大的优惠，限时有效。"),
    },
    Builtin {
        name: "review_request",
        link: "track(data.review_url or shop.url)",
        en: ("How was your order?", "Tell us what you think of your order from {{ shop.name }}."),
        zh: ("您对订单满意吗？", "请告诉我们您对 {{ shop.name }} 订单的看法。"),
    },
];

/// A template's subject and body source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub subject: String,
    pub body: String,
}

/// The built-in template `name` in `locale` (`en` or `zh-CN`).
pub fn builtin(name: &str, locale: &str) -> Option<Source> {
    let builtin = BUILTINS.iter().find(|b| b.name == name)?;
    let link = builtin.link;
    let source = if locale == "zh-CN" {
        let (subject, line) = builtin.zh;
        let body = format!(
            "{{{{ customer.first_name or \"您好\" }}}}，\n\n{line}{COUPON_ZH}\n\n{{{{ {link} }}}}\n\n— {{{{ shop.name }}}}\n退订：{{{{ unsubscribe_url }}}}\n"
        );
        Source { subject: subject.to_owned(), body }
    } else {
        let (subject, line) = builtin.en;
        let body = format!(
            "Hi {{{{ customer.first_name or \"there\" }}}},\n\n{line}{COUPON_EN}\n\n{{{{ {link} }}}}\n\n— {{{{ shop.name }}}}\nUnsubscribe: {{{{ unsubscribe_url }}}}\n"
        );
        Source { subject: subject.to_owned(), body }
    };
    Some(source)
}

/// A template that cannot be rendered.
#[derive(Debug, thiserror::Error)]
#[error("template `{name}`: {reason}")]
pub struct TemplateError {
    pub name: String,
    pub reason: String,
}

fn environment(track: impl Fn(&str) -> String + Send + Sync + 'static) -> Environment<'static> {
    let mut env = Environment::new();
    env.add_function("track", move |url: String| track(&url));
    env
}

/// Checks a merchant's template before it is stored: a known name, a sane size, and a
/// subject and body that parse.
pub fn check(name: &str, locale: &str, source: &Source) -> Result<(), InvalidInput> {
    if !NAMES.contains(&name) {
        return Err(InvalidInput::new("name", format!("unknown template `{name}`; known: {}", NAMES.join(", "))));
    }
    if !LOCALES.contains(&locale) {
        return Err(InvalidInput::new("locale", format!("`{locale}` is not one of {}", LOCALES.join(", "))));
    }
    let env = environment(str::to_owned);
    for (field, text) in [("subject", &source.subject), ("body", &source.body)] {
        if text.trim().is_empty() || text.len() > MAX_TEMPLATE_BYTES {
            return Err(InvalidInput::new(field, "must be non-empty and at most 64 KiB"));
        }
        env.template_from_str(text).map_err(|e| InvalidInput::new(field, format!("does not parse: {e}")))?;
    }
    Ok(())
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// Renders `source` over `context`; `track` turns a target URL into a tracked link.
pub fn render(
    name: &str,
    source: &Source,
    context: &serde_json::Value,
    track: impl Fn(&str) -> String + Send + Sync + 'static,
) -> Result<Rendered, TemplateError> {
    let env = environment(track);
    let fail = |e: minijinja::Error| TemplateError { name: name.to_owned(), reason: e.to_string() };
    let subject = env.render_str(&source.subject, context).map_err(fail)?;
    let body = env.render_str(&source.body, context).map_err(fail)?;
    // A subject is one line, whatever the data held.
    let subject = subject.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    Ok(Rendered { subject, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses_and_renders_in_both_locales() {
        let context = serde_json::json!({
            "customer": {"first_name": "Ada", "email": "ada@example.com"},
            "shop": {"name": "Tea House", "url": "https://tea.example"},
            "data": {"coupon": "SAVE10"},
            "unsubscribe_url": "https://h/u/1",
            "cart_url": "https://h/r/cart",
        });
        for name in NAMES {
            for locale in LOCALES {
                let source = builtin(name, locale).expect("built in");
                check(name, locale, &source).expect("parses");
                let rendered = render(name, &source, &context, |u| format!("T({u})")).expect("renders");
                assert!(rendered.body.contains("https://h/u/1"), "{name}/{locale}: unsubscribe link");
                assert!(rendered.body.contains("SAVE10"), "{name}/{locale}: coupon");
                assert!(rendered.body.contains("Ada"), "{name}/{locale}: greeting");
                assert!(rendered.body.contains("T(https://tea.example)") || rendered.body.contains("https://h/r/cart"));
            }
        }
        let zh = render("welcome_1", &builtin("welcome_1", "zh-CN").expect("zh"), &context, str::to_owned).expect("zh");
        assert_eq!(zh.subject, "欢迎来到 Tea House");
    }

    #[test]
    fn merchant_templates_are_checked_by_field() {
        let ok = Source { subject: "Hi".into(), body: "{{ shop.name }}".into() };
        assert_eq!(check("welcome_9", "en", &ok).map_err(|e| e.field), Err("name"));
        assert_eq!(check("welcome_1", "fr", &ok).map_err(|e| e.field), Err("locale"));
        let broken = Source { subject: "Hi".into(), body: "{% if %}".into() };
        assert_eq!(check("welcome_1", "en", &broken).map_err(|e| e.field), Err("body"));
        assert_eq!(locale_for("zh-Hans-CN"), "zh-CN");
        assert_eq!(locale_for("de"), "en");
    }
}
