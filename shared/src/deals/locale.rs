//! Russian captions for states, transitions and order changes.

use super::commission::Payer;
use super::model::{ChangeType, Deal, Role, State};

pub fn state(s: State) -> &'static str {
    match s {
        State::Pending => "Ожидает подтверждения",
        State::Approved => "Подтверждена продавцом",
        State::PaymentVerification => "Оплачена, ожидается проверка менеджером",
        State::Paid => "Оплачена",
        State::Shipping => "Товар отправлен",
        State::Received => "Товар получен",
        State::Rejected => "Подана претензия",
        State::Escalation => "Спор передан менеджеру",
        State::AwaitReturning => "Ожидается возврат товара",
        State::Returned => "Товар возвращен",
        State::PayoutInitiated => "Выплата инициирована",
        State::Done => "Сделка завершена",
        State::Cancelled => "Сделка отменена",
    }
}

/// Who pays the commission.
pub fn payer(p: Payer) -> &'static str {
    match p {
        Payer::Supplier => "продавец",
        Payer::Consumer => "покупатель",
        Payer::Half => "пополам",
    }
}

pub fn transition(to: State) -> &'static str {
    match to {
        State::Pending => "Вернуть на согласование",
        State::Approved => "Подтвердить сделку",
        State::PaymentVerification => "Подтвердить и перейти к оплате",
        State::Paid => "Подтвердить оплату",
        State::Shipping => "Отправить товар",
        State::Received => "Подтвердить получение",
        State::Rejected => "Подать претензию",
        State::Escalation => "Передать спор менеджеру",
        State::AwaitReturning => "Оформить возврат",
        State::Returned => "Подтвердить возврат товара",
        State::PayoutInitiated => "Инициировать выплату",
        State::Done => "Завершить сделку",
        State::Cancelled => "Отменить сделку",
    }
}

pub fn change_type(t: ChangeType) -> &'static str {
    match t {
        ChangeType::ProlongProtection => "Продление срока защиты",
        ChangeType::ChangeConditions => "Изменение условий сделки",
        ChangeType::PurchaseReturn => "Возврат товара",
    }
}

fn party(r: Role) -> &'static str {
    match r {
        Role::Supplier => "Продавец",
        Role::Consumer => "Покупатель",
        Role::Manager => "Менеджер",
    }
}

/// The state, or what is asked while a change is open ("Продавец запросил продление срока защиты").
pub fn display_state(deal: &Deal) -> String {
    match deal.requested_change() {
        Some(c) => {
            let what = match c.change_type {
                ChangeType::ProlongProtection => "продление срока защиты",
                ChangeType::ChangeConditions => "изменение условий сделки",
                ChangeType::PurchaseReturn => "возврат товара",
            };
            format!("{} запросил {what}", party(c.requested_by))
        }
        None => state(deal.state).to_owned(),
    }
}
