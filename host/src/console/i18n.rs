//! The console's words in English and Simplified Chinese. Templates read them as
//! `t.<key>`; a key missing from a locale is a template error, caught by the tests.

use std::collections::BTreeMap;
use std::sync::LazyLock;

/// A language the console is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    En,
    ZhCn,
}

impl Locale {
    /// `zh…` is Simplified Chinese; everything else English.
    pub fn parse(text: &str) -> Self {
        if text.to_ascii_lowercase().starts_with("zh") { Self::ZhCn } else { Self::En }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::ZhCn => "zh-CN",
        }
    }

    /// The words of this locale by key.
    pub fn strings(self) -> &'static BTreeMap<&'static str, &'static str> {
        match self {
            Self::En => &EN,
            Self::ZhCn => &ZH,
        }
    }
}

/// (key, English, Simplified Chinese).
const WORDS: &[(&str, &str, &str)] = &[
    ("console", "Console", "控制台"),
    ("sign_in", "Sign in", "登录"),
    ("sign_out", "Sign out", "退出登录"),
    ("sign_in_title", "Sign in to your shop", "登录您的店铺"),
    (
        "sign_in_lead",
        "Customer analytics, segments and loyalty for your store.",
        "为您的店铺提供客户分析、分群与会员忠诚度管理。",
    ),
    ("email", "Email", "邮箱"),
    ("password", "Password", "密码"),
    ("wrong_credentials", "The email or password is wrong.", "邮箱或密码错误。"),
    (
        "throttled",
        "Too many wrong passwords. Sign-in for this account is paused; try again in {minutes} minutes.",
        "密码错误次数过多，该账号的登录已暂停，请 {minutes} 分钟后再试。",
    ),
    ("nav_overview", "Overview", "概览"),
    ("nav_customers", "Customers", "客户"),
    ("nav_rfm", "RFM grid", "RFM 矩阵"),
    ("nav_cohorts", "Cohorts", "同期群"),
    ("nav_segments", "Segments", "客户分群"),
    ("nav_definitions", "Definitions", "指标定义"),
    ("nav_users", "Users", "用户"),
    ("nav_audit", "Audit log", "审计日志"),
    ("section_analytics", "Analytics", "分析"),
    ("section_people", "People", "客户"),
    ("section_admin", "Administration", "管理"),
    ("role_owner", "Owner", "所有者"),
    ("role_marketer", "Marketer", "营销"),
    ("role_analyst", "Analyst", "分析师"),
    ("masked_note", "Emails and phone numbers are masked for analysts.", "分析师角色下邮箱和电话已脱敏显示。"),
    ("period", "Period", "时间段"),
    ("last_7", "7 days", "近 7 天"),
    ("last_30", "30 days", "近 30 天"),
    ("last_90", "90 days", "近 90 天"),
    ("last_365", "12 months", "近 12 个月"),
    ("custom", "Custom", "自定义"),
    ("since", "From", "开始"),
    ("until", "To (excluded)", "结束（不含）"),
    ("apply", "Apply", "应用"),
    ("previous", "Previous period", "上一周期"),
    ("vs_previous", "vs previous period", "对比上一周期"),
    ("revenue", "Revenue", "销售额"),
    ("orders", "Orders", "订单数"),
    ("aov", "Average order value", "客单价"),
    ("active_customers", "Active customers", "活跃客户"),
    ("new_customers", "New customers", "新客户"),
    ("returning_customers", "Returning customers", "回头客"),
    ("repurchase_rate", "Repurchase rate", "复购率"),
    ("churn_rate", "Churn rate", "流失率"),
    ("ltv_average", "Average LTV", "平均生命周期价值"),
    ("ltv_median", "Median LTV", "生命周期价值中位数"),
    ("points_liability", "Points liability", "未兑换积分"),
    ("points", "points", "积分"),
    ("other_currency_orders", "orders in other currencies left out", "笔其他币种订单未计入"),
    ("definition", "Definition", "定义"),
    ("what_is_this", "What does this figure mean?", "这个指标是什么意思？"),
    ("revenue_trend", "Revenue over time", "销售额趋势"),
    ("orders_trend", "Orders over time", "订单趋势"),
    ("this_period", "This period", "本周期"),
    (
        "charts_unavailable",
        "Charts are unavailable: the charting library was not bundled into this build.",
        "图表不可用：本次构建未包含图表库。",
    ),
    ("search_placeholder", "Search by email, name, external id or phone", "按邮箱、姓名、外部 ID 或电话搜索"),
    ("search", "Search", "搜索"),
    ("name", "Name", "姓名"),
    ("external_id", "External id", "外部 ID"),
    ("phone", "Phone", "电话"),
    ("total_spent", "Total spent", "累计消费"),
    ("last_order", "Last order", "最近下单"),
    ("first_order", "First order", "首次下单"),
    ("no_customers", "No customer matches.", "没有匹配的客户。"),
    ("next_page", "Next page", "下一页"),
    ("customer", "Customer", "客户"),
    ("customer_since", "Customer since", "注册时间"),
    ("identities", "Identities", "身份标识"),
    ("merged_records", "Merged records", "已合并记录"),
    ("tags", "Tags", "标签"),
    ("add_tag", "Add tag", "添加标签"),
    ("remove", "Remove", "移除"),
    ("segments", "Segments", "分群"),
    ("segment_history", "Segment history", "分群历史"),
    ("joined", "Joined", "加入"),
    ("left", "Left", "离开"),
    ("current", "current", "当前"),
    ("tier", "Tier", "会员等级"),
    ("no_tier", "No tier", "无等级"),
    ("points_balance", "Points balance", "积分余额"),
    ("points_ledger", "Points ledger", "积分明细"),
    ("coupons", "Coupons", "优惠券"),
    ("timeline", "Timeline", "行为时间线"),
    ("messages", "Messages", "消息"),
    ("status", "Status", "状态"),
    ("when", "When", "时间"),
    ("event", "Event", "事件"),
    ("page", "Page", "页面"),
    ("item_count", "Items", "件数"),
    ("total", "Total", "金额"),
    ("refunded", "Refunded", "已退款"),
    ("source", "Source", "来源"),
    ("reason", "Reason", "原因"),
    ("kind", "Kind", "类型"),
    ("value", "Value", "值"),
    ("code", "Code", "券码"),
    ("expires", "Expires", "到期"),
    ("channel", "Channel", "渠道"),
    ("template", "Template", "模板"),
    ("nothing_yet", "Nothing yet.", "暂无记录。"),
    (
        "rfm_lead",
        "Customers with a purchase, scored 1–5 on recency (R) and frequency (F). Click a cell to see its customers.",
        "有购买记录的客户按最近购买时间（R）和购买频次（F）打 1–5 分。点击格子查看其中的客户。",
    ),
    ("recency", "Recency", "最近购买"),
    ("frequency", "Frequency", "购买频次"),
    ("customers", "customers", "位客户"),
    ("cell_customers", "Customers in R{r} × F{f}", "R{r} × F{f} 中的客户"),
    (
        "cohorts_lead",
        "Customers grouped by the month of their first purchase; each cell is the share who bought again that many months later.",
        "按首次购买月份对客户分组；每格表示在之后第 N 个月再次购买的客户占比。",
    ),
    ("cohort", "Cohort", "同期群"),
    ("size", "Size", "人数"),
    ("month_n", "Month", "第 N 月"),
    ("retention_curve", "Average retention by months since first purchase", "按首购后月数的平均留存"),
    ("segment", "Segment", "分群"),
    ("members", "Members", "成员"),
    (
        "no_segments",
        "No segments yet: enable a segmenter plugin and run a recompute.",
        "暂无分群：请启用分群插件并运行重新计算。",
    ),
    ("users", "Console users", "控制台用户"),
    ("role", "Role", "角色"),
    ("created", "Created", "创建时间"),
    ("add_user", "Add or reset a user", "添加或重置用户"),
    ("save", "Save", "保存"),
    (
        "audit_lead",
        "Every change made through the console: who, what and when.",
        "通过控制台进行的每一次变更：谁、做了什么、何时。",
    ),
    ("actor", "Who", "操作人"),
    ("action", "What", "操作"),
    ("target", "On", "对象"),
    ("detail", "Detail", "详情"),
    ("not_found", "Not found", "未找到"),
    ("not_found_lead", "There is nothing here, or it belongs to another shop.", "该页面不存在，或属于其他店铺。"),
    ("forbidden", "Not allowed", "无权限"),
    ("forbidden_lead", "Your role cannot do this.", "您的角色无法执行此操作。"),
    ("form_expired", "This form has expired. Reload the page and try again.", "表单已过期，请刷新页面后重试。"),
    ("error", "Something went wrong", "出错了"),
    ("error_lead", "The page could not be shown. The error was logged.", "页面无法显示，错误已记录。"),
    ("back", "Back to the overview", "返回概览"),
    ("language", "中文", "English"),
    (
        "definitions_lead",
        "What every figure in the console and in /v1/analytics means.",
        "控制台和 /v1/analytics 中每个指标的含义。",
    ),
    ("invalid_period", "That period is not valid; showing the last 30 days.", "时间段无效，已显示近 30 天。"),
    ("user_saved", "User saved.", "用户已保存。"),
    ("customers_count", "Customers", "客户数"),
    ("spent", "Spend", "消费额"),
];

static EN: LazyLock<BTreeMap<&'static str, &'static str>> =
    LazyLock::new(|| WORDS.iter().map(|&(k, en, _)| (k, en)).collect());
static ZH: LazyLock<BTreeMap<&'static str, &'static str>> =
    LazyLock::new(|| WORDS.iter().map(|&(k, _, zh)| (k, zh)).collect());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_translated_once() {
        assert_eq!(EN.len(), WORDS.len(), "duplicate keys");
        for (key, en, zh) in WORDS {
            assert!(!en.is_empty() && !zh.is_empty(), "{key}");
        }
        assert_eq!(Locale::parse("zh-CN"), Locale::ZhCn);
        assert_eq!(Locale::parse("en-GB"), Locale::En);
    }
}
