//! Channels and their subject tokens (`feedback.raw.<token>`).

use kesu_proto::v1::Channel;

/// Every channel with its subject token, in proto order.
pub const CHANNELS: [(Channel, &str); 10] = [
    (Channel::App, "app"),
    (Channel::Web, "web"),
    (Channel::Wechat, "wechat"),
    (Channel::MiniProgram, "mini_program"),
    (Channel::Phone, "phone"),
    (Channel::Email, "email"),
    (Channel::Store, "store"),
    (Channel::Paper, "paper"),
    (Channel::Social, "social"),
    (Channel::Other, "other"),
];

/// The subject token of a channel; `None` for unspecified.
pub fn channel_token(channel: Channel) -> Option<&'static str> {
    CHANNELS.iter().find(|(c, _)| *c == channel).map(|(_, t)| *t)
}

/// The channel a subject token names.
pub fn channel_from_token(token: &str) -> Option<Channel> {
    CHANNELS.iter().find(|(_, t)| *t == token).map(|(c, _)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for (channel, token) in CHANNELS {
            assert_eq!(channel_token(channel), Some(token));
            assert_eq!(channel_from_token(token), Some(channel));
        }
        assert_eq!(channel_token(Channel::Unspecified), None);
        assert_eq!(channel_from_token("fax"), None);
    }
}
