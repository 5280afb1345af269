using System.Globalization;

namespace Bpfilter.Engine.Rules;

/// <summary>The TCP header's flag bits, in their wire positions (byte 13).</summary>
[Flags]
public enum TcpFlags : byte
{
    None = 0,
    Fin = 0x01,
    Syn = 0x02,
    Rst = 0x04,
    Psh = 0x08,
    Ack = 0x10,
    Urg = 0x20,
    Ece = 0x40,
    Cwr = 0x80,
    /// <summary>iptables' ALL: FIN to URG. ECE and CWR are not in it (iptables has no names for them; these are ours).</summary>
    All = 0x3f,
}

/// <summary>Reads TCP flags in iptables' spelling: names joined by commas ("SYN,ACK"), or ALL or NONE.</summary>
public static class TcpFlagNames
{
    public static TcpFlags Parse(string text)
    {
        var flags = TcpFlags.None;
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!Enum.TryParse<TcpFlags>(part, ignoreCase: true, out var flag) || int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                throw new RulesetValidationException(
                    $"'{part}' is not a TCP flag: use FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, ALL or NONE, joined by commas", "tcp-flags");
            flags |= flag;
        }
        return flags;
    }

    public static string Format(TcpFlags flags) => flags switch
    {
        TcpFlags.None => "NONE",
        TcpFlags.All => "ALL",
        _ => string.Join(',', Enum.GetValues<TcpFlags>().Where(f => f is not (TcpFlags.None or TcpFlags.All) && flags.HasFlag(f)).Select(f => f.ToString().ToUpperInvariant())),
    };
}
