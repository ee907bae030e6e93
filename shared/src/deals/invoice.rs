//! `GET /orders/:id/download_invoice`: the bank invoice as a real .docx (Office Open XML),
//! built with `docx-rs`.

use docx_rs::{Docx, Paragraph, Run, Table, TableCell, TableRow};

use super::model::Deal;
use crate::error::ApiError;
use crate::money;

fn para(text: &str) -> Paragraph {
    Paragraph::new().add_run(Run::new().add_text(text))
}

fn row(label: &str, value: &str) -> TableRow {
    TableRow::new(vec![
        TableCell::new().add_paragraph(para(label)),
        TableCell::new().add_paragraph(para(value)),
    ])
}

/// Renders the invoice for the consumer's payment of `deal`.
pub fn render(deal: &Deal, payer: &str, payee: &str) -> Result<Vec<u8>, ApiError> {
    let title = format!("Счёт на оплату по сделке № {}", deal.id);
    let purpose = format!("Оплата сделки № {}", deal.id);
    let amount = money::format(deal.consumer_pay);
    let table = Table::new(vec![
        row("Сделка", &deal.id.to_string()),
        row("Описание", &deal.order_description),
        row("Стоимость сделки, руб.", &money::format(deal.cost)),
        row("Комиссия, руб.", &money::format(deal.commission)),
        row("К оплате, руб.", &amount),
        row("Плательщик", payer),
        row("Получатель", payee),
        row("Назначение платежа", &purpose),
        row("Дата", &deal.updated_at.format("%d.%m.%Y").to_string()),
    ]);
    let doc = Docx::new()
        .add_paragraph(Paragraph::new().add_run(Run::new().add_text(&title).bold().size(32)))
        .add_table(table)
        .add_paragraph(para(&format!("Итого к оплате: {amount} руб.")))
        .add_paragraph(para("Оплата по счёту подтверждается менеджером после поступления средств."));
    let mut out = std::io::Cursor::new(Vec::new());
    doc.build().pack(&mut out).map_err(|e| ApiError::Internal(format!("invoice: {e}")))?;
    Ok(out.into_inner())
}
