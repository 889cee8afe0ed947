//! The enhancement options of every command are the `faceenhance` element's own properties:
//! each writable property of the bin (itself proxied from `facedetector` and `facerestore`)
//! becomes `--NAME`, with the property's blurb, range, choices and default, and is handed to
//! the element as the text the user typed. There is no second list to keep in step: a new
//! property is a new option, and the command line can never mean something the element
//! does not.

use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};
use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use gst::glib;
use gst::prelude::*;

/// Properties the command sets itself: it counts faces and restorations from the messages.
const OWN: [&str; 2] = ["post-messages", "detector-post-messages"];

/// Properties that are not options: `max-latency` is for live sources, where a frame
/// that waits too long leaves unrestored; on a file it would make the output depend on
/// the machine's speed (and segments stop being repeatable).
const NOT_OPTIONS: [&str; 1] = ["max-latency"];

/// How a worker runs, not what it makes: left out of [`EnhanceOpts::settings`].
const HOW: [&str; 3] = ["threads", "device-id", "trt-cache-dir"];

/// What clap needs of one property (a `ParamSpec` itself is not `Sync`).
struct Prop {
    name: &'static str,
    help: String,
    kind: Kind,
}

enum Kind {
    Bool,
    Int(i64, i64),
    Float(f64, f64),
    Choice(Vec<&'static str>),
    Text,
}

/// GStreamer initialised and the elements registered (statically, from this binary).
pub fn init() -> Result<()> {
    gst::init()?;
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| gstfaceenhance::plugin_register_static().map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| anyhow!("registering the faceenhance elements: {e}"))
}

/// A fresh `faceenhance` bin.
pub fn element() -> Result<gst::Element> {
    init()?;
    Ok(gst::ElementFactory::make("faceenhance").build()?)
}

fn props() -> &'static [Prop] {
    static PROPS: OnceLock<Vec<Prop>> = OnceLock::new();
    PROPS.get_or_init(|| {
        // clap builds every subcommand's options to parse any of them: without the
        // elements there is nothing this command can do, so say why and stop.
        let bin = element().unwrap_or_else(|e| {
            eprintln!("faceenhance: the GStreamer elements cannot be made: {e:#}");
            std::process::exit(2)
        });
        let own_type = bin.type_();
        bin.list_properties()
            .iter()
            .filter(|p| p.owner_type() == own_type && p.flags().contains(glib::ParamFlags::WRITABLE))
            .filter(|p| !OWN.contains(&p.name()) && !NOT_OPTIONS.contains(&p.name()))
            .map(|p| {
                let default = p.default_value();
                let shown = match (default.get::<Option<String>>(), default.get::<f32>()) {
                    (Ok(None), _) => None,
                    (Ok(Some(s)), _) if s.is_empty() => None,
                    // 0.1, not the f32's 0.10000000149011612
                    (_, Ok(f)) => Some(f.to_string()),
                    _ => default.serialize().ok().map(|s| s.to_string()),
                };
                let blurb = p.blurb().unwrap_or_default().to_string();
                let help = match shown {
                    Some(d) => format!("{blurb} [default: {d}]"),
                    None => blurb,
                };
                let kind = if let Some(e) = p.downcast_ref::<glib::ParamSpecEnum>() {
                    let nicks = e.enum_class().values().iter().map(|v| v.nick()).collect();
                    Kind::Choice(leak(nicks))
                } else if p.is::<glib::ParamSpecBoolean>() {
                    Kind::Bool
                } else if let Some(u) = p.downcast_ref::<glib::ParamSpecUInt>() {
                    Kind::Int(u.minimum() as i64, u.maximum() as i64)
                } else if let Some(i) = p.downcast_ref::<glib::ParamSpecInt>() {
                    Kind::Int(i.minimum() as i64, i.maximum() as i64)
                } else if let Some(f) = p.downcast_ref::<glib::ParamSpecFloat>() {
                    Kind::Float(f.minimum() as f64, f.maximum() as f64)
                } else if let Some(d) = p.downcast_ref::<glib::ParamSpecDouble>() {
                    Kind::Float(d.minimum(), d.maximum())
                } else {
                    Kind::Text
                };
                Prop { name: p.name(), help, kind }
            })
            .collect()
    })
}

/// Enum nicks live as long as their registered type, which is for ever; clap wants `'static`.
fn leak(nicks: Vec<&str>) -> Vec<&'static str> {
    nicks.into_iter().map(|n| &*Box::leak(n.to_string().into_boxed_str())).collect()
}

fn arg(p: &Prop) -> Arg {
    let arg = Arg::new(p.name)
        .long(p.name)
        .value_name(&*Box::leak(p.name.to_uppercase().into_boxed_str()))
        .help(p.help.clone())
        .help_heading("Enhancement (the faceenhance element's properties)");
    match &p.kind {
        // `--force` alone means true; `--smoothing=false` turns a default-on switch off.
        Kind::Bool => arg
            .num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true")
            .value_parser(clap::value_parser!(bool))
            .action(ArgAction::Set),
        Kind::Int(min, max) => arg.value_parser(clap::value_parser!(i64).range(*min..=*max)),
        Kind::Float(min, max) => {
            let (min, max) = (*min, *max);
            arg.value_parser(move |s: &str| -> std::result::Result<f64, String> {
                let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
                if (min..=max).contains(&v) {
                    Ok(v)
                } else {
                    Err(format!("{v} is not in {min}..={max}"))
                }
            })
        }
        Kind::Choice(nicks) => arg.value_parser(PossibleValuesParser::new(nicks.iter().copied())),
        Kind::Text => arg,
    }
}

/// The enhancement options given on the command line, as the user typed them.
#[derive(Clone, Debug, Default)]
pub struct EnhanceOpts {
    given: Vec<(&'static str, String)>,
    /// `--edit`: the attributes a `faceedit` after the bin changes.
    edit: Option<String>,
}

/// `--edit`'s help, naming what the installed edit model edits.
fn edit_help() -> String {
    let names = faceenhance::edit::edit_names(&faceenhance::paths::default_edit_model())
        .map(|n| n.join(", "))
        .unwrap_or_else(|e| format!("(no edit model installed: {e:#})"));
    format!(
        "Edit the faces' attributes after restoring them (the faceedit element): Name=value pairs \
         separated by commas, 1 add, -1 remove, e.g. \"Eyeglasses=1,Smiling=-1\". The edit model \
         edits: {names}"
    )
}

impl EnhanceOpts {
    /// Sets every given option on a `faceenhance` bin (and turns on the messages the
    /// command counts from).
    pub fn apply(&self, bin: &gst::Element) -> Result<()> {
        for (name, value) in &self.given {
            let pspec = bin.find_property(name).ok_or_else(|| anyhow!("--{name}: not a property of {}", bin.name()))?;
            let v = glib::Value::deserialize(value, pspec.value_type())
                .map_err(|_| anyhow!("--{name} {value}: not a value of this option"))?;
            bin.set_property_from_value(name, &v);
        }
        for name in OWN {
            bin.set_property(name, true);
        }
        Ok(())
    }

    /// A `faceedit` set up as `--edit` asks, if it was given.
    pub fn edit_element(&self) -> Result<Option<gst::Element>> {
        let Some(spec) = &self.edit else { return Ok(None) };
        let edit = gst::ElementFactory::make("faceedit")
            .property("attributes", spec.as_str())
            .build()
            .context("GStreamer element 'faceedit' is not installed")?;
        Ok(Some(edit))
    }

    /// The options whose value differs from the element's default, as the element holds
    /// them (so `--strength 1` and `--strength 1.0` are the same as nothing), leaving out how
    /// a worker runs (threads, GPU number, engine cache): segments made with other settings
    /// must not be joined, but cluster nodes may differ in those, and in where their default
    /// models are installed.
    pub fn settings(&self) -> Result<String> {
        let (bin, defaults) = (element()?, element()?);
        self.apply(&bin)?;
        let text = |v: &glib::Value| match v.get::<Option<String>>() {
            Ok(s) => s.unwrap_or_default(),
            Err(_) => v.serialize().map(|s| s.to_string()).unwrap_or_default(),
        };
        let mut out = Vec::new();
        for p in props().iter().filter(|p| !HOW.contains(&p.name)) {
            let (now, default) = (text(&bin.property_value(p.name)), text(&defaults.property_value(p.name)));
            if now != default {
                out.push(format!("{}={now}", p.name));
            }
        }
        if let Some(spec) = &self.edit {
            out.push(format!("edit={spec}"));
        }
        Ok(out.join(" "))
    }
}

impl FromArgMatches for EnhanceOpts {
    fn from_arg_matches(m: &ArgMatches) -> std::result::Result<Self, clap::Error> {
        let mut opts = Self::default();
        opts.update_from_arg_matches(m)?;
        Ok(opts)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> std::result::Result<(), clap::Error> {
        for p in props() {
            if m.value_source(p.name) != Some(clap::parser::ValueSource::CommandLine) {
                continue;
            }
            // A switch given alone has its default-missing value, "true".
            if let Some(raw) = m.get_raw(p.name).and_then(|mut v| v.next()) {
                self.given.retain(|(n, _)| *n != p.name);
                self.given.push((p.name, raw.to_string_lossy().to_string()));
            }
        }
        if let Some(spec) = m.get_one::<String>("edit") {
            self.edit = Some(spec.clone());
        }
        Ok(())
    }
}

impl Args for EnhanceOpts {
    fn augment_args(cmd: Command) -> Command {
        cmd.args(props().iter().map(arg))
            .arg(Arg::new("edit").long("edit").value_name("ATTRIBUTES").help(edit_help()).action(ArgAction::Set))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}
