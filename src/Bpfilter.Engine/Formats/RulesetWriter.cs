using Bpfilter.Engine.Formats.Iptables;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Formats;

/// <summary>Writes a ruleset in any <see cref="RulesetFormat"/>.</summary>
public static class RulesetWriter
{
    /// <param name="family">For iptables-save: the rules of this family (iptables-save or ip6tables-save), with the rules of both.</param>
    public static string Write(Ruleset ruleset, RulesetFormat format, IpFamily family = IpFamily.Ipv4) => format switch
    {
        RulesetFormat.Yaml => YamlRulesetWriter.Write(ruleset),
        RulesetFormat.IptablesSave => IptablesSaveWriter.Write(ruleset, family),
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
    };
}
