using System.Management.Automation;
using Bpfilter.Completion;
using Bpfilter.Engine;
using Bpfilter.Engine.Editing;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Commands;

/// <summary>
/// Builds one rule object from parameters that mirror the ruleset language's match keys and verdicts. The verdict
/// parameters are in parameter sets of their own, so a command line names exactly one verdict.
/// </summary>
[Cmdlet(VerbsCommon.New, "BpfRule", DefaultParameterSetName = ActionSet)]
[OutputType(typeof(Rule))]
public sealed class NewBpfRuleCommand : PSCmdlet
{
    private const string ActionSet = "Action", JumpSet = "Jump", GotoSet = "Goto", RejectSet = "Reject", LogSet = "Log";

    [Parameter(Position = 0)]
    public string? Name { get; set; }

    [Parameter]
    public IpFamily? Family { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(InterfaceCompleter))]
    public string? InInterface { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(InterfaceCompleter))]
    public string? OutInterface { get; set; }

    [Parameter]
    public string[]? Source { get; set; }

    [Parameter]
    public string[]? Destination { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(ProtocolCompleter))]
    public string? Protocol { get; set; }

    [Parameter]
    public string[]? SourcePort { get; set; }

    [Parameter]
    public string[]? DestinationPort { get; set; }

    [Parameter]
    [SingleText("'SYN,ACK,FIN,RST SYN'")]
    public string? TcpFlags { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(IcmpTypeCompleter))]
    public string? IcmpType { get; set; }

    [Parameter]
    public string? IcmpCode { get; set; }

    [Parameter]
    public string? Length { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(FragmentCompleter))]
    public string? Fragment { get; set; }

    [Parameter]
    public string? Dscp { get; set; }

    [Parameter]
    public string? Ttl { get; set; }

    [Parameter]
    public string? HopLimit { get; set; }

    [Parameter]
    public string? Mark { get; set; }

    [Parameter]
    public string? Limit { get; set; }

    [Parameter]
    public uint? LimitBurst { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(CtStateCompleter))]
    public string[]? CtState { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(CtDirectionCompleter))]
    public string? CtDirection { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ActionSet)]
    [Parameter(ParameterSetName = RejectSet)]
    [Parameter(ParameterSetName = LogSet)]
    [ArgumentCompleter(typeof(VerdictCompleter))]
    public string? Action { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = JumpSet)]
    [ArgumentCompleter(typeof(UserChainNameCompleter))]
    public string? Jump { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = GotoSet)]
    [ArgumentCompleter(typeof(UserChainNameCompleter))]
    public string? Goto { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = RejectSet)]
    [ArgumentCompleter(typeof(RejectWithCompleter))]
    public string? RejectWith { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = LogSet)]
    [AllowEmptyString]
    public string? LogPrefix { get; set; }

    protected override void ProcessRecord()
    {
        try
        {
            WriteObject(new Rule(Name, BuildMatch(), BuildVerdict()));
        }
        catch (BpfilterException e)
        {
            ThrowTerminatingError(ErrorRecords.From(e, Name));
        }
    }

    private Match BuildMatch()
    {
        var protocol = Read(Protocol, nameof(Protocol), MatchText.Protocol);
        if (LimitBurst is not null && Limit is null)
            throw new RulesetValidationException("-LimitBurst needs -Limit, the rate the bucket refills at", "burst");
        return new Match
        {
            Family = Family,
            InInterface = Read(InInterface, nameof(InInterface), MatchText.Interface),
            OutInterface = Read(OutInterface, nameof(OutInterface), MatchText.Interface),
            Source = Read(Source, nameof(Source), v => MatchText.Addresses(v, "source")),
            Destination = Read(Destination, nameof(Destination), v => MatchText.Addresses(v, "destination")),
            Protocol = protocol,
            SourcePort = Read(SourcePort, nameof(SourcePort), v => MatchText.Ports(v, "source-port")),
            DestinationPort = Read(DestinationPort, nameof(DestinationPort), v => MatchText.Ports(v, "destination-port")),
            TcpFlags = Read(TcpFlags, nameof(TcpFlags), MatchText.TcpFlags),
            IcmpType = Read(IcmpType, nameof(IcmpType), t => MatchText.IcmpType(t, v6: protocol?.Protocol == IpProtocol.Icmpv6)),
            IcmpCode = Read(IcmpCode, nameof(IcmpCode), t => MatchText.Range(t, 255, "icmp-code")),
            Length = Read(Length, nameof(Length), t => MatchText.Range(t, 65535 + 40, "length")),
            Fragment = Read(Fragment, nameof(Fragment), MatchText.Fragment),
            Dscp = Read(Dscp, nameof(Dscp), t => MatchText.Range(t, 63, "dscp")),
            Ttl = Read(Ttl, nameof(Ttl), t => MatchText.Range(t, 255, "ttl")),
            HopLimit = Read(HopLimit, nameof(HopLimit), t => MatchText.Range(t, 255, "hop-limit")),
            Mark = Read(Mark, nameof(Mark), MatchText.Mark),
            Limit = Read(Limit, nameof(Limit), rate => MatchText.Limit(rate, LimitBurst)),
            CtState = Read(CtState, nameof(CtState), MatchText.CtState),
            CtDirection = CtDirection is null ? null : Parsed(nameof(CtDirection), () => MatchText.CtDirection(CtDirection)),
        };
    }

    private Verdict BuildVerdict()
    {
        switch (ParameterSetName)
        {
            case JumpSet: return Parsed(nameof(Jump), () => Verdict.Jump(Jump!));
            case GotoSet: return Parsed(nameof(Goto), () => Verdict.Goto(Goto!));
            case RejectSet:
                CheckAction("reject", nameof(RejectWith));
                return Verdict.Reject(Parsed(nameof(RejectWith), () => RejectWithNames.Parse(RejectWith!)));
            case LogSet:
                CheckAction("log", nameof(LogPrefix));
                return Parsed(nameof(LogPrefix), () => Verdict.Log(LogPrefix));
            default:
                var action = Action!.ToLowerInvariant();
                if (action is "jump" or "goto")
                    throw new RulesetValidationException($"-Action: {action} needs a chain: write -{char.ToUpperInvariant(action[0])}{action[1..]} CHAIN", "action");
                return Parsed(nameof(Action), () => Verdict.Parse(Action));
        }
    }

    private void CheckAction(string action, string parameter)
    {
        if (Action is not null && !Action.Equals(action, StringComparison.OrdinalIgnoreCase))
            throw new RulesetValidationException($"-{parameter} is for -Action {action} (or alone), not -Action {Action}", "action");
    }

    private static T? Read<T>(string? text, string parameter, Func<string, T> parse) where T : class =>
        text is null ? null : Parsed(parameter, () => parse(text));

    private static T? Read<T>(string[]? values, string parameter, Func<string[], T> parse) where T : class =>
        values is null ? null : Parsed(parameter, () => parse(values));

    // Errors name the parameter whose text they are about.
    private static T Parsed<T>(string parameter, Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (RulesetValidationException e)
        {
            // The burst is checked with the rate, but an error about it is about -LimitBurst.
            throw new RulesetValidationException($"-{(e.Field == "burst" ? nameof(LimitBurst) : parameter)}: {e.Message}", e.Field);
        }
    }
}
