using System.Collections;
using System.Collections.ObjectModel;
using System.Management.Automation;
using Bpfilter.Engine;
using Bpfilter.Engine.Formats;
using Bpfilter.Engine.Formats.Iptables;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Commands;

/// <summary>
/// Reads ruleset files into ruleset objects: one ruleset per YAML file, or one ruleset from all the iptables-save
/// dumps of the call (one per family).
/// </summary>
[Cmdlet(VerbsData.Import, "BpfRuleset", DefaultParameterSetName = PathSet)]
[OutputType(typeof(Ruleset))]
public sealed class ImportBpfRulesetCommand : PSCmdlet
{
    private const string PathSet = "Path", LiteralPathSet = "LiteralPath";

    private readonly List<string> _dumps = [];
    private bool _dumpMissing;
    private IptablesSaveOptions _options = IptablesSaveOptions.Default;

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = PathSet)]
    [SupportsWildcards]
    public string[] Path { get; set; } = [];

    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = LiteralPathSet)]
    [Alias("PSPath", "LP")]
    public string[] LiteralPath { get; set; } = [];

    [Parameter]
    public RulesetFormat Format { get; set; } = RulesetFormat.Yaml;

    /// <summary>The deployment name of a ruleset read from dumps, which do not name one.</summary>
    [Parameter]
    public string? Name { get; set; }

    [Parameter]
    public IpFamily? Family { get; set; }

    /// <summary>Built-in chain name to placement text ("xdp:eth1").</summary>
    [Parameter]
    public Hashtable? ChainPlacement { get; set; }

    protected override void BeginProcessing()
    {
        try
        {
            if (Format == RulesetFormat.Yaml)
            {
                var given = new[] { ("-Name", Name is not null), ("-Family", Family is not null), ("-ChainPlacement", ChainPlacement is not null) }
                    .Where(p => p.Item2).Select(p => p.Item1).ToList();
                if (given.Count > 0)
                    throw new BpfilterException("ParameterInvalid", FailureCategory.InvalidArgument,
                        $"{string.Join(" and ", given)} {(given.Count == 1 ? "is" : "are")} for -Format IptablesSave: a YAML file names its ruleset, and its chains say their family and hook");
                return;
            }
            if (Name is null)
                throw new BpfilterException("ParameterInvalid", FailureCategory.InvalidArgument,
                    "-Format IptablesSave needs -Name: a dump does not name its ruleset, and the name is the deployment's");
            Names.CheckDeploymentName(Name);
            var placements = new Dictionary<string, ChainPlacement>(StringComparer.OrdinalIgnoreCase);
            if (ChainPlacement is not null)
            {
                foreach (DictionaryEntry entry in ChainPlacement)
                    placements[entry.Key.ToString() ?? ""] = Engine.Formats.Iptables.ChainPlacement.Parse(LanguagePrimitives.ConvertTo<string>(entry.Value));
            }
            _options = new IptablesSaveOptions(placements);
        }
        catch (BpfilterException e)
        {
            ThrowTerminatingError(ErrorRecords.From(e, Name));
        }
    }

    protected override void ProcessRecord()
    {
        foreach (var file in ResolveFiles())
        {
            if (Format == RulesetFormat.IptablesSave)
            {
                _dumps.Add(file);
                continue;
            }
            try
            {
                WriteObject(YamlRulesetReader.ReadFile(file));
            }
            catch (BpfilterException e)
            {
                WriteError(ErrorRecords.From(e, file));
            }
        }
    }

    protected override void EndProcessing()
    {
        // The dumps make one ruleset together: if one cannot be read, there is no ruleset.
        if (Format != RulesetFormat.IptablesSave || _dumps.Count == 0 || _dumpMissing) return;
        var sources = new List<IptablesSaveSource>();
        foreach (var file in _dumps)
        {
            try
            {
                sources.Add(IptablesSaveSource.FromFile(file, Family));
            }
            catch (BpfilterException e)
            {
                WriteError(ErrorRecords.From(e, file));
            }
        }
        if (sources.Count < _dumps.Count) return;
        try
        {
            WriteObject(IptablesSaveReader.Read(sources, Name!, _options));
        }
        catch (BpfilterException e)
        {
            WriteError(ErrorRecords.From(e, e is RulesetFormatException f ? f.File : _dumps[0]));
        }
    }

    private IEnumerable<string> ResolveFiles()
    {
        if (ParameterSetName == LiteralPathSet)
        {
            foreach (var literal in LiteralPath) yield return GetUnresolvedProviderPathFromPSPath(literal);
            yield break;
        }
        foreach (var pattern in Path)
        {
            Collection<string> resolved;
            try
            {
                resolved = GetResolvedProviderPathFromPSPath(pattern, out _);
            }
            catch (ItemNotFoundException e)
            {
                WriteError(new ErrorRecord(e, "Bpfilter.RulesetNotFound", ErrorCategory.ObjectNotFound, pattern));
                _dumpMissing = true;
                continue;
            }
            foreach (var file in resolved) yield return file;
        }
    }
}
