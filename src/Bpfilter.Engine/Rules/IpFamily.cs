namespace Bpfilter.Engine.Rules;

/// <summary>The IP version a rule or a packet is about.</summary>
public enum IpFamily
{
    Ipv4 = 4,
    Ipv6 = 6,
}
